package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/replicator-cdc/replicator/internal/childproc"
)

// killWait bounds the wait for a process after SIGKILL, which only a
// process stuck in the kernel survives.
const killWait = 5 * time.Second

// child is a process the demo started and must stop on every path.
type child struct {
	name    string
	logPath string
	*childproc.Process
}

// startChild runs path with its output in logPath. The child gets its own
// process group, so that a Ctrl-C in the terminal reaches only the demo,
// which then stops its children in order; and a parent-death signal, so
// that it dies with the demo even when the demo is killed outright.
//
// childproc starts it from a thread that lives as long as the child, where
// the parent-death signal is safe.
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
	p, err := childproc.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, logPath: logPath, Process: p}
	return c, nil
}

// exited reports whether the process has ended.
func (c *child) exited() bool {
	select {
	case <-c.Done():
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
		_ = c.Cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-c.Done():
		if c.Err() != nil {
			return fmt.Errorf("%s exited: %w", c.name, c.Err())
		}
		return nil
	case <-time.After(grace):
	}
	_ = c.Cmd.Process.Kill()
	select {
	case <-c.Done():
		return fmt.Errorf("%s did not stop within %s of SIGTERM and was killed", c.name, grace)
	case <-time.After(killWait):
		return fmt.Errorf("%s (pid %d) survived SIGKILL", c.name, c.Cmd.Process.Pid)
	}
}

// exitError describes an early exit, with the end of the log, which holds
// the reason.
func (c *child) exitError() error {
	return fmt.Errorf("%s exited unexpectedly (%v); the end of its log:\n%s", c.name, c.Err(), c.logTail())
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
