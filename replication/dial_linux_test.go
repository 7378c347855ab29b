package replication

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/replicator-cdc/replicator/internal/pgtest"
)

// Both kinds of source connection carry TCP keepalives and a TCP user
// timeout, so that the kernel gives a dead peer up too.
func TestSourceConnectionsDetectDeadPeers(t *testing.T) {
	c := pgtest.Start(t)
	ctx := context.Background()
	dsn := c.NewDatabase(t)
	sql, err := ConnectSQL(ctx, dsn)
	require.NoError(t, err)
	defer sql.Close(ctx)
	repl, err := ConnectReplication(ctx, dsn)
	require.NoError(t, err)
	defer repl.Close(ctx)
	for name, conn := range map[string]net.Conn{"SQL": sql.PgConn().Conn(), "replication": repl.Conn()} {
		tcp, ok := conn.(*net.TCPConn)
		if !ok {
			t.Skipf("the test server is reached over %T, not TCP", conn)
		}
		raw, err := tcp.SyscallConn()
		require.NoError(t, err)
		got := map[string]int{}
		require.NoError(t, raw.Control(func(fd uintptr) {
			for opt, level := range map[string][2]int{
				"SO_KEEPALIVE":     {unix.SOL_SOCKET, unix.SO_KEEPALIVE},
				"TCP_KEEPIDLE":     {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
				"TCP_KEEPINTVL":    {unix.IPPROTO_TCP, unix.TCP_KEEPINTVL},
				"TCP_KEEPCNT":      {unix.IPPROTO_TCP, unix.TCP_KEEPCNT},
				"TCP_USER_TIMEOUT": {unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT},
			} {
				v, err := unix.GetsockoptInt(int(fd), level[0], level[1])
				require.NoError(t, err, opt)
				got[opt] = v
			}
		}))
		require.Equal(t, map[string]int{
			"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 15, "TCP_KEEPINTVL": 5, "TCP_KEEPCNT": 4, "TCP_USER_TIMEOUT": 35000,
		}, got, "%s connection", name)
	}
}

func socketLowat(t *testing.T, conn *net.TCPConn) int {
	raw, err := conn.SyscallConn()
	require.NoError(t, err)
	var v int
	var sockErr error
	require.NoError(t, raw.Control(func(fd uintptr) {
		v, sockErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT)
	}))
	require.NoError(t, sockErr)
	return v
}

// Only TCP connections get a low-water mark setter, which sets the kernel's.
func TestLowatSetterOnlyForTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	require.Nil(t, lowatSetter(a))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	var d net.Dialer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", l.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	set := lowatSetter(conn)
	require.NotNil(t, set)
	require.NoError(t, set(coalesceBytes))
	require.Equal(t, coalesceBytes, socketLowat(t, conn.(*net.TCPConn)))
	require.NoError(t, set(1))
	require.Equal(t, 1, socketLowat(t, conn.(*net.TCPConn)))
}
