package replication

import (
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/replicator-cdc/replicator/internal/sockopt"
)

// The kernel's own dead-peer detection on every source connection: probes
// after a quiet minute would come too late for an idle SQL connection that
// the stream needs at once, and unacknowledged writes are given up on
// instead of retransmitted for a quarter of an hour.
const (
	keepAliveIdle     = 15 * time.Second
	keepAliveInterval = 5 * time.Second
	keepAliveCount    = 4
	// tcpUserTimeout bounds how long written data may stay unacknowledged.
	tcpUserTimeout = keepAliveIdle + keepAliveCount*keepAliveInterval
)

// defaultConnectTimeout bounds connecting when the DSN sets no
// connect_timeout: a server behind a dead network must not hang a
// reconnect forever.
const defaultConnectTimeout = 30 * time.Second

// configureDial gives a connection configuration TCP keepalives and a TCP
// user timeout, and a connect timeout unless the DSN chose one.
func configureDial(cfg *pgconn.Config) {
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = defaultConnectTimeout
	}
	d := &net.Dialer{
		Timeout: cfg.ConnectTimeout,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable: true, Idle: keepAliveIdle, Interval: keepAliveInterval, Count: keepAliveCount,
		},
		Control: sockopt.UserTimeout(tcpUserTimeout),
	}
	cfg.DialFunc = d.DialContext
}
