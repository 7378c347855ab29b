package app_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/httpapi"
	"github.com/replicator-cdc/replicator/internal/pgtest"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/targets/memory"
)

// TestStartWhileServerDown starts the daemon while PostgreSQL is down: it
// waits, says so on /readyz, the status page's JSON, 'status' and the
// reconnect metric, then mirrors once the server is up.
func TestStartWhileServerDown(t *testing.T) {
	c := pgtest.Start(t)
	name := "startdown"
	dsn, err := c.CreateDatabase(context.Background(), name)
	require.NoError(t, err)
	e := &env{t: t, name: name, dsn: dsn, mem: memory.New(), stateDir: t.TempDir()}
	e.db = mustConnect(t, dsn)
	e.exec(itemsSchema)
	e.exec(`INSERT INTO items (id, name, qty) SELECT g, 'name ' || g, g FROM generate_series(1, 100) g`)
	require.NoError(t, c.Shutdown("fast"))

	reg := prometheus.NewRegistry()
	mon := monitor.New(reg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	defer stopHTTP()
	go func() { _ = httpapi.New(httpapi.Options{Monitor: mon, Gatherer: reg}).Serve(httpCtx, ln) }()
	cfg := e.config(itemsMapping)
	cfg.HTTP.Listen = ln.Addr().String()
	logs := &testkit.LockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, logs), &slog.HandlerOptions{Level: slog.LevelInfo}))
	go func() {
		r.done <- app.Run(ctx, cfg, app.Deps{Logger: logger, Registry: reg, Monitor: mon, Writers: writers(e)})
	}()
	t.Cleanup(func() { r.stop() })

	deadline := time.Now().Add(60 * time.Second)
	for mon.Snapshot().ReconnectAttempt < 2 {
		select {
		case err := <-r.done:
			t.Fatalf("daemon exited while the server was down: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "no second attempt within 60s")
	}
	resp, err := http.Get("http://" + ln.Addr().String() + "/readyz")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
	require.Contains(t, string(body), "reconnecting")
	require.GreaterOrEqual(t, testutil.ToFloat64(metricByName(t, reg, "replicator_source_reconnects_total")), 2.0)
	report, err := app.Status(context.Background(), cfg)
	require.NoError(t, err, "status while the server is down and the daemon answers")
	require.NotNil(t, report.Daemon)
	require.Equal(t, "reconnecting", report.Daemon.Phase)
	require.GreaterOrEqual(t, report.Daemon.ReconnectAttempt, 2)
	require.Contains(t, report.Daemon.LastError, "connect")
	require.NotEmpty(t, report.SourceError)

	require.NoError(t, c.StartAgain(context.Background()))
	e.db = mustConnect(t, dsn)
	e.waitMirror("items", "items", 90*time.Second, "id")
	e.exec(`UPDATE items SET qty = qty + 1 WHERE id <= 10`)
	e.exec(`INSERT INTO items (id, name) VALUES (500, 'after')`)
	e.waitMirror("items", "items", 60*time.Second, "id")
	testkit.Eventually(t, 30*time.Second, "phase streaming", func() bool { return mon.Snapshot().Phase == "streaming" })
	require.Zero(t, mon.Snapshot().ReconnectAttempt)
	require.Contains(t, logs.String(), "cannot reach PostgreSQL")
	require.NoError(t, r.stop())
}

// TestStartFatalSourceErrors: what no wait fixes stops the daemon at once
// with what to do: a wrong password, a role or a database that does not
// exist, a role without REPLICATION.
func TestStartFatalSourceErrors(t *testing.T) {
	// Passwords are checked only where pg_hba.conf asks for them.
	hba, err := os.CreateTemp("", "pg_hba-*.conf")
	require.NoError(t, err)
	t.Cleanup(func() { os.Remove(hba.Name()) })
	_, err = hba.WriteString("local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost replication postgres 127.0.0.1/32 trust\n" +
		"host all all 127.0.0.1/32 scram-sha-256\nhost replication all 127.0.0.1/32 scram-sha-256\n")
	require.NoError(t, err)
	require.NoError(t, hba.Close())
	require.NoError(t, os.Chmod(hba.Name(), 0o644))
	c := pgtest.Start(t, pgtest.Options{Settings: map[string]string{"hba_file": hba.Name()}})
	ctx := context.Background()
	name := "fatalstart"
	dsn, err := c.CreateDatabase(ctx, name)
	require.NoError(t, err)
	replDSN, err := c.CreateRole(ctx, "fatal_repl", true)
	require.NoError(t, err)
	plainDSN, err := c.CreateRole(ctx, "fatal_plain", false)
	require.NoError(t, err)
	db := mustConnect(t, dsn)
	_, err = db.Exec(ctx, itemsSchema+`; GRANT SELECT ON items TO fatal_repl, fatal_plain; CREATE PUBLICATION pub_fatalstart FOR TABLE items`)
	require.NoError(t, err)
	at := func(dsn string) string {
		s, err := pgtest.WithDatabase(dsn, name)
		require.NoError(t, err)
		return s
	}
	wrongPassword := strings.Replace(at(replDSN), "fatal_repl:", "fatal_repl:x", 1)
	require.NotEqual(t, at(replDSN), wrongPassword)
	noDatabase, err := pgtest.WithDatabase(replDSN, "no_such_db")
	require.NoError(t, err)
	for _, tc := range []struct{ name, dsn, want string }{
		{"wrong password", wrongPassword, "password of source.dsn is wrong"},
		{"no role", strings.Replace(wrongPassword, "fatal_repl:", "nobody:", 1), "password of source.dsn is wrong"},
		{"no database", noDatabase, "database of source.dsn does not exist"},
		{"no replication", at(plainDSN), "REPLICATION"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &env{t: t, name: name, dsn: tc.dsn, mem: memory.New(), stateDir: t.TempDir()}
			cfg := e.config(itemsMapping)
			runCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			err := app.Run(runCtx, cfg, app.Deps{Logger: quietLogger(), Writers: writers(e)})
			require.Error(t, err)
			require.NoError(t, runCtx.Err(), "Run waited instead of stopping")
			require.Contains(t, err.Error(), tc.want)
			u, perr := url.Parse(tc.dsn)
			require.NoError(t, perr)
			if password, ok := u.User.Password(); ok {
				require.NotContains(t, err.Error(), password)
			}
		})
	}
}
