package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// killWait bounds the wait for a process after SIGKILL, which only a
// process stuck in the kernel survives.
const killWait = 5 * time.Second

// child is a process the demo started and must stop on every path.
type child struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has exited
	err     error         // from Wait, set before done is closed
}

// startChild runs path with its output in logPath. The child gets its own
// process group, so that a Ctrl-C in the terminal reaches only the demo,
// which then stops its children in order; and a parent-death signal, so
// that it dies with the demo even when the demo is killed outright.
//
// The parent-death signal fires when the thread that forked the child
// exits, so the forking goroutine stays locked to its thread, waiting, for
// as long as the child lives (the same reason as in internal/pgtest).
func startChild(name, logPath string, env []string, path string, args ...string) (*child, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	c := &child{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.err = cmd.Wait()
		close(c.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return c, nil
}

// exited reports whether the process has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to grace for the process to exit, then
// kills it. It returns an error unless the process exited with status 0 on
// its own; calling it again returns the same outcome.
func (c *child) stop(grace time.Duration) error {
	if !c.exited() {
		// An error means the process is already gone, which done shows.
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-c.done:
		if c.err != nil {
			return fmt.Errorf("%s exited: %w", c.name, c.err)
		}
		return nil
	case <-time.After(grace):
	}
	_ = c.cmd.Process.Kill()
	select {
	case <-c.done:
		return fmt.Errorf("%s did not stop within %s of SIGTERM and was killed", c.name, grace)
	case <-time.After(killWait):
		return fmt.Errorf("%s (pid %d) survived SIGKILL", c.name, c.cmd.Process.Pid)
	}
}

// exitError describes an early exit, with the end of the log, which holds
// the reason.
func (c *child) exitError() error {
	return fmt.Errorf("%s exited unexpectedly (%v); the end of its log:\n%s", c.name, c.err, c.logTail())
}

// logTail is the end of the child's log, for error messages.
func (c *child) logTail() string {
	const lines = 25
	data, err := os.ReadFile(c.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return "    " + strings.Join(all, "\n    ")
}
