package app

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The writers' connections give up bytes the target has not acknowledged
// within targetUserTimeout, and the bound keeps a cut-off instance's last
// requests from arriving after another instance may write (lock.go).
func TestTargetConnectionsGiveUpUnacknowledgedBytes(t *testing.T) {
	require.Less(t, leaseTTL+targetUserTimeout, lockIdleTimeout+takeoverGrace)
	require.Less(t, leaseTTL, lockIdleTimeout)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	tr := targetHTTP(4).Transport.(*http.Transport)
	require.Equal(t, 5, tr.MaxIdleConnsPerHost)
	conn, err := tr.DialContext(context.Background(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	var got int
	var optErr error
	require.NoError(t, raw.Control(func(fd uintptr) {
		got, optErr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	}))
	require.NoError(t, optErr)
	require.Equal(t, int(targetUserTimeout.Milliseconds()), got)
}
