package app

import (
	"net"
	"net/http"
	"time"

	"github.com/replicator-cdc/replicator/internal/sockopt"
)

// targetUserTimeout is the TCP_USER_TIMEOUT of the writers' connections
// (Linux): bytes a target's server has not acknowledged within it are
// given up and the connection reset, rather than retransmitted for up to a
// quarter of an hour. An instance cut off from the network stops writing
// when its lease ends (lock.go); what it had sent by then reaches the
// target within this bound or never, so leaseTTL + targetUserTimeout must
// stay below lockIdleTimeout + takeoverGrace, when another instance may
// write first.
const targetUserTimeout = 3 * time.Second

// targetDialer dials the targets' API servers as http.DefaultTransport
// does, with targetUserTimeout.
func targetDialer() *net.Dialer {
	return &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: sockopt.UserTimeout(targetUserTimeout)}
}

// targetHTTP is a writer's HTTP client, keeping as many idle connections
// as the writer has requests in flight.
func targetHTTP(maxConcurrent int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = maxConcurrent + 1
	t.DialContext = targetDialer().DialContext
	return &http.Client{Transport: t}
}
