// Package childproc starts child processes that are given a parent-death
// signal (SysProcAttr.Pdeathsig), so that they die with the process that
// started them even when it is killed outright.
package childproc

import (
	"os/exec"
	"runtime"
)

// Process is a started child.
type Process struct {
	Cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts cmd from a goroutine locked to its OS thread for as long as
// the child lives, and waits for it there. The parent-death signal fires
// when the thread that forked the child exits, not the process, and Go
// ends a thread whose locked goroutine returns: a child forked from any
// thread could be killed when an unrelated LockOSThread user finishes
// (a soak run lost its daemon to a SIGKILL nobody sent).
func Start(cmd *exec.Cmd) (*Process, error) {
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// Done is closed once the child has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the child ended (cmd.Wait's error); only meaningful once Done
// is closed.
func (p *Process) Err() error { return p.err }
