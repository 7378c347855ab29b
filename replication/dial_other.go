//go:build !linux

package replication

import (
	"syscall"
	"time"
)

// setUserTimeout does nothing where TCP_USER_TIMEOUT does not exist; the
// keepalives and the stream's own silence bound remain.
func setUserTimeout(time.Duration) func(network, address string, c syscall.RawConn) error {
	return nil
}

// rcvLowat is not used where the kernel's handling of SO_RCVLOWAT for
// wakeups is unknown: the stream reads message by message.
func rcvLowat(syscall.RawConn) func(int) error { return nil }
