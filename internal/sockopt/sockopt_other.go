//go:build !linux

package sockopt

import (
	"syscall"
	"time"
)

// UserTimeout does nothing where TCP_USER_TIMEOUT is Linux's own; the
// callers' keepalives and their own silence bounds remain.
func UserTimeout(time.Duration) func(network, address string, c syscall.RawConn) error {
	return nil
}
