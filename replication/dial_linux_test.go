package replication

import (
	"context"
	"net"
	"testing"

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
