package sockopt

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// UserTimeout is a net.Dialer Control that sets TCP_USER_TIMEOUT to d on
// TCP sockets (a Unix socket has no peer to lose): bytes the peer has not
// acknowledged within d are given up and the connection reset, rather than
// retransmitted for up to a quarter of an hour.
func UserTimeout(d time.Duration) func(network, address string, c syscall.RawConn) error {
	return func(network, _ string, c syscall.RawConn) error {
		if network != "tcp" && network != "tcp4" && network != "tcp6" {
			return nil
		}
		var sockErr error
		if err := c.Control(func(fd uintptr) {
			sockErr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
		}); err != nil {
			return err
		}
		return sockErr
	}
}
