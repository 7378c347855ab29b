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
