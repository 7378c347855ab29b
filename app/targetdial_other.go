//go:build !linux

package app

import (
	"syscall"
	"time"
)

// setUserTimeout does nothing where TCP_USER_TIMEOUT is Linux's own.
func setUserTimeout(time.Duration) func(network, address string, c syscall.RawConn) error {
	return nil
}
