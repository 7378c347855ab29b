package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/httpapi"
	"github.com/replicator-cdc/replicator/internal/pgtest"
	"github.com/replicator-cdc/replicator/internal/tcpproxy"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/replication"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
	"github.com/replicator-cdc/replicator/targets/memory"
)

// TestFrozenNetworkIsRiddenOut freezes the network between the daemon and
// PostgreSQL mid-stream (a proxy that passes no byte and no close, as when
// packets are dropped) while rows keep arriving. The daemon notices from
// the server's silence, /readyz stops saying ready, and once the network is
// back the daemon reconnects in-process and the mirror converges.
func TestFrozenNetworkIsRiddenOut(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{Settings: map[string]string{"wal_sender_timeout": "3s"}})
	ctx := context.Background()
	name := "frozen"
	direct, err := c.CreateDatabase(ctx, name)
	require.NoError(t, err)
	proxy, err := tcpproxy.Start(hostPort(t, direct))
	require.NoError(t, err)
	t.Cleanup(func() { proxy.Close() })
	db, err := replication.ConnectSQL(ctx, direct)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close(context.Background()) })
	// The daemon goes through the proxy; the test talks to the server directly.
	e := &env{t: t, name: name, dsn: throughProxy(t, direct, proxy.Addr()), db: db, mem: memory.New(), stateDir: t.TempDir()}
	e.exec(`CREATE TABLE items (id bigint PRIMARY KEY, name text)`)
	e.exec(`INSERT INTO items SELECT g, 'name ' || g FROM generate_series(1, 50) g`)
	fake, targets := larkFake(t, "items", []feishufake.Column{
		{Name: "id", DataType: "bigint", IsPrimaryKey: true},
		{Name: "name", DataType: "text", AllowNull: true},
	})
	cfg := e.configWithTargets(targets, `
  - source: items
    target: lark
    table: items
`)
	reg := prometheus.NewRegistry()
	mon := monitor.New(reg)
	api := httptest.NewServer(httpapi.New(httpapi.Options{Monitor: mon, Gatherer: reg, Logger: quietLogger()}))
	t.Cleanup(api.Close)
	logs := &testkit.LockedBuffer{}
	daemon := e.startStreamingWith(cfg, mon, logs)
	mirrored := func() bool {
		got := fakeRowsByID(t, fake, "items")
		src := e.sourceRows("items", "id")
		if len(got) != len(src) {
			return false
		}
		for id, row := range src {
			if got[id]["name"] != fmt.Sprintf("%q", row["name"]) {
				return false
			}
		}
		return true
	}
	testkit.Eventually(t, 60*time.Second, "the snapshot in the fake", mirrored)
	testkit.Eventually(t, 60*time.Second, "ready", func() bool { code, _ := readyz(t, api.URL); return code == http.StatusOK })

	proxy.Freeze()
	var why string
	for i := 0; ; i++ {
		e.exec(`INSERT INTO items VALUES ($1, 'during the freeze')`, 1000+i)
		code, body := readyz(t, api.URL)
		if code != http.StatusOK {
			why = body
			break
		}
		require.Less(t, i, 600, "/readyz still says %q a minute after the network froze", body)
		select {
		case err := <-daemon.done:
			t.Fatalf("the daemon stopped while the network was frozen: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Before the connection is given up, the stall itself is the reason.
	require.Contains(t, why, "not ready: no message from PostgreSQL for")
	e.exec(`INSERT INTO items SELECT g, 'still frozen' FROM generate_series(2000, 2100) g`)
	// Still frozen: the daemon drops the dead connection and tries anew.
	testkit.Eventually(t, 60*time.Second, "the daemon to give the frozen connection up", func() bool {
		return strings.Contains(logs.String(), "reconnecting")
	})

	proxy.Thaw()
	e.exec(`UPDATE items SET name = 'after the thaw' WHERE id <= 10`)
	testkit.Eventually(t, 90*time.Second, "the rows inserted during the freeze in the fake", mirrored)
	testkit.Eventually(t, 60*time.Second, "ready again", func() bool { code, _ := readyz(t, api.URL); return code == http.StatusOK })
	select {
	case err := <-daemon.done:
		t.Fatalf("the daemon stopped: %v", err)
	default:
	}
	require.NoError(t, daemon.stop())
}

func readyz(t *testing.T, base string) (int, string) {
	t.Helper()
	res, err := http.Get(base + "/readyz")
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

// hostPort is the server address of a pgtest connection URL.
func hostPort(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err, "pgtest's own server has a URL DSN")
	return u.Host
}

// throughProxy points a connection URL at addr, with a connect timeout so
// that connecting through the frozen proxy gives up.
func throughProxy(t *testing.T, dsn, addr string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.Host = addr
	q := u.Query()
	q.Set("connect_timeout", "3")
	u.RawQuery = q.Encode()
	return u.String()
}
