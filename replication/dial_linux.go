package replication

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// rcvLowat sets SO_RCVLOWAT: a TCP socket wakes its reader only once that
// many bytes are queued (a non-blocking read still returns what there is).
func rcvLowat(c syscall.RawConn) func(int) error {
	return func(bytes int) error {
		var sockErr error
		if err := c.Control(func(fd uintptr) {
			sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, bytes)
		}); err != nil {
			return err
		}
		return sockErr
	}
}
