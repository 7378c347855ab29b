//go:build !linux

package replication

import "syscall"

// rcvLowat is not used where the kernel's handling of SO_RCVLOWAT for
// wakeups is unknown: the stream reads message by message.
func rcvLowat(syscall.RawConn) func(int) error { return nil }
