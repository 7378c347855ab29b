package app_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/internal/pgtest"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/targets/memory"
)

// TestReconnectDuringKeyChangeFetch terminates the daemon's SQL
// connections right before a key change whose new row must be read from
// the source (its TOASTed value is unchanged): the read fails on a closed
// connection, the daemon connects again and the mirror ends exact.
func TestReconnectDuringKeyChangeFetch(t *testing.T) {
	e := newEnv(t, itemsSchema)
	for i := 1; i <= 20; i++ {
		e.exec(`INSERT INTO items (id, name, big) VALUES ($1, 'n', $2)`, i, bigValue(i))
	}
	logs := &testkit.LockedBuffer{}
	daemon := e.startStreamingWith(e.config(itemsMapping), monitor.New(prometheus.NewRegistry()), logs)
	e.waitMirror("items", "items", 60*time.Second, "id")
	slot := "slot_" + e.name
	// The slot check every 15s shares the connection with the fetch and may
	// notice first; a few rounds make sure the fetch met the closed one.
	for round := 1; round <= 3 && !containsFetchFailure(logs.String()); round++ {
		holder := e.slotHolder(slot)
		var n int
		require.NoError(t, e.db.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		   WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND application_name = 'replicator'`).Scan(&n))
		require.Positive(t, n, "no SQL connection of the daemon to terminate")
		e.exec(`UPDATE items SET id = id + 1000, name = 'moved' WHERE id = $1`, round)
		e.waitNewHolder(slot, holder, daemon)
		e.waitMirror("items", "items", 60*time.Second, "id")
	}
	require.True(t, containsFetchFailure(logs.String()), "the key change's read never met the terminated connection")
	e.exec(`UPDATE items SET id = id + 1000 WHERE id = 10`)
	e.waitMirror("items", "items", 60*time.Second, "id")
	select {
	case err := <-daemon.done:
		t.Fatalf("daemon stopped: %v", err)
	default:
	}
	require.NoError(t, daemon.stop())
}

func containsFetchFailure(logs string) bool {
	return strings.Contains(logs, "read row after key change")
}

// startWithMonitor starts the daemon with mon and its log kept in logs too,
// without waiting for anything.
func (e *env) startWithMonitor(cfg *config.Config, mon *monitor.Monitor, logs io.Writer) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{e.t}, logs), &slog.HandlerOptions{Level: slog.LevelInfo}))
	go func() {
		r.done <- app.Run(ctx, cfg, app.Deps{Logger: logger, Monitor: mon, Writers: writers(e)})
	}()
	e.t.Cleanup(func() { r.stop() })
	return r
}

// TestReconnectDuringSnapshot restarts the server while the snapshot
// copies: the daemon never exits, resumes the copy and the mirror converges,
// also for changes made meanwhile.
func TestReconnectDuringSnapshot(t *testing.T) {
	c := pgtest.Start(t)
	name := "snaprestart"
	dsn, err := c.CreateDatabase(context.Background(), name)
	require.NoError(t, err)
	e := &env{t: t, name: name, dsn: dsn, mem: memory.New(), stateDir: t.TempDir()}
	e.db = mustConnect(t, dsn)
	e.exec(itemsSchema)
	e.exec(`INSERT INTO items (id, name, qty) SELECT g, 'name ' || g, g FROM generate_series(1, 5000) g`)
	var batches atomic.Int64
	firstBatch := make(chan struct{})
	e.mem.BeforeWrite = func(ctx context.Context, b replicator.Batch) error {
		if batches.Add(1) == 1 {
			close(firstBatch)
		}
		// Slow enough that the copy is still under way at the restart.
		select {
		case <-time.After(100 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	mon := monitor.New(prometheus.NewRegistry())
	logs := &testkit.LockedBuffer{}
	daemon := e.startWithMonitor(e.config(itemsMapping, "  batch_rows: 200"), mon, logs)
	select {
	case <-firstBatch:
	case err := <-daemon.done:
		t.Fatalf("daemon stopped before the snapshot: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("no snapshot batch within 60s")
	}
	require.Equal(t, "snapshot", mon.Snapshot().Phase)
	require.NoError(t, c.Restart(context.Background(), "immediate"))
	e.db = mustConnect(t, dsn)
	e.exec(`UPDATE items SET qty = -qty WHERE id % 7 = 0`)
	e.exec(`DELETE FROM items WHERE id % 11 = 0`)
	e.exec(`INSERT INTO items (id, name) SELECT g, 'late' FROM generate_series(6001, 6100) g`)
	e.waitMirror("items", "items", 120*time.Second, "id")
	testkit.Eventually(t, 60*time.Second, "streaming", func() bool { return mon.Snapshot().Phase == "streaming" })
	e.exec(`UPDATE items SET name = 'after' WHERE id <= 50`)
	e.waitMirror("items", "items", 60*time.Second, "id")
	select {
	case err := <-daemon.done:
		t.Fatalf("daemon stopped: %v", err)
	default:
	}
	require.Contains(t, logs.String(), "reconnecting and resuming")
	require.NoError(t, daemon.stop())
}
