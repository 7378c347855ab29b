//go:build soak

package soak

import (
	"net/url"
	"testing"
	"time"

	"github.com/replicator-cdc/replicator/internal/tcpproxy"
)

// walSenderTimeout is the server's wal_sender_timeout in the soak, which is
// also the daemon's dead-peer bound: a frozen connection silent this long is
// dropped. It is small so that the frozen-network step stays short.
const walSenderTimeout = 10 * time.Second

// frozenFor is how long the frozen-network step holds every byte and close
// between the daemon and PostgreSQL: well past the dead-peer bound.
const frozenFor = 25 * time.Second

// behindProxy puts the daemon's connections to PostgreSQL through a TCP
// proxy the soak can freeze, and returns the proxy and the daemon's DSN.
// The connect timeout makes a connection attempt through the frozen proxy
// give up rather than hang.
func behindProxy(t *testing.T, dsn string) (*tcpproxy.Proxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("pgtest's DSN is a URL: %v", err)
	}
	proxy, err := tcpproxy.Start(u.Host)
	if err != nil {
		t.Fatalf("start the TCP proxy: %v", err)
	}
	t.Cleanup(func() { proxy.Close() })
	u.Host = proxy.Addr()
	q := u.Query()
	q.Set("connect_timeout", "3")
	u.RawQuery = q.Encode()
	return proxy, u.String()
}
