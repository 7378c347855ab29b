package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/internal/pgtest"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/replication"
	"github.com/replicator-cdc/replicator/targets/memory"
)

// TestReconnectAfterTerminatedBackends kills the daemon's connections while
// it streams: its walsender, then its SQL connections, then all at once. It
// rides each out in-process and the mirror ends exact.
func TestReconnectAfterTerminatedBackends(t *testing.T) {
	e := newEnv(t, itemsSchema)
	e.exec(`INSERT INTO items (id, name, qty) SELECT g, 'name ' || g, g FROM generate_series(1, 200) g`)
	logs := &testkit.LockedBuffer{}
	daemon := e.startStreamingWith(e.config(itemsMapping), monitor.New(prometheus.NewRegistry()), logs)
	e.waitMirror("items", "items", 60*time.Second, "id")

	slot := "slot_" + e.name
	kills := []struct{ name, sql string }{
		{"walsender", `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active`},
		{"SQL connections", `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		   WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND $1 <> ''`},
		{"all connections", `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		   WHERE datname = current_database() AND pid <> pg_backend_pid() AND $1 <> ''`},
	}
	for i, k := range kills {
		e.exec(`UPDATE items SET qty = qty + 1 WHERE id % 3 = $1`, i)
		e.exec(`INSERT INTO items (id, name) VALUES ($1, 'before')`, 1000+i)
		holder := e.slotHolder(slot)
		var n int
		require.NoError(t, e.db.QueryRow(context.Background(), "SELECT count(*) FROM ("+k.sql+") k", slot).Scan(&n))
		require.Positive(t, n, "nothing to terminate for %s", k.name)
		e.exec(`DELETE FROM items WHERE id = $1`, 10+i)
		e.exec(`INSERT INTO items (id, name) VALUES ($1, 'between')`, 2000+i)
		// A lost SQL connection is noticed at the next slot check.
		e.waitNewHolder(slot, holder, daemon)
		e.exec(`UPDATE items SET name = 'after ' || $1::int WHERE id <= 20`, i)
		e.waitMirror("items", "items", 60*time.Second, "id")
		select {
		case err := <-daemon.done:
			t.Fatalf("daemon stopped after terminating its %s: %v", k.name, err)
		default:
		}
	}
	require.Contains(t, logs.String(), "reconnecting")
	require.NoError(t, daemon.stop())
}

// TestReconnectAfterServerRestart restarts the server under the streaming
// daemon, fast and immediate, in a cluster of its own.
func TestReconnectAfterServerRestart(t *testing.T) {
	c := pgtest.Start(t)
	name := "restarted"
	dsn, err := c.CreateDatabase(context.Background(), name)
	require.NoError(t, err)
	e := &env{t: t, name: name, dsn: dsn, mem: memory.New(), stateDir: t.TempDir()}
	reopen := func() {
		db, err := replication.ConnectSQL(context.Background(), dsn)
		require.NoError(t, err)
		t.Cleanup(func() { db.Close(context.Background()) })
		e.db = db
	}
	reopen()
	e.exec(itemsSchema)
	e.exec(`INSERT INTO items (id, name, qty) SELECT g, 'name ' || g, g FROM generate_series(1, 200) g`)
	logs := &testkit.LockedBuffer{}
	daemon := e.startStreamingWith(e.config(itemsMapping), monitor.New(prometheus.NewRegistry()), logs)
	e.waitMirror("items", "items", 60*time.Second, "id")
	for i, mode := range []string{"fast", "immediate"} {
		e.exec(`UPDATE items SET qty = qty + 1 WHERE id % 2 = $1`, i)
		e.exec(`INSERT INTO items (id, name) VALUES ($1, 'before')`, 1000+i)
		require.NoError(t, c.Restart(context.Background(), mode))
		reopen()
		e.exec(`DELETE FROM items WHERE id = $1`, 10+i)
		e.exec(`UPDATE items SET name = 'after ' || $1::int WHERE id <= 20`, i)
		e.waitMirror("items", "items", 90*time.Second, "id")
		select {
		case err := <-daemon.done:
			t.Fatalf("daemon stopped after a %s restart: %v", mode, err)
		default:
		}
	}
	require.Contains(t, logs.String(), "reconnecting")
	require.NoError(t, daemon.stop())
}

func (e *env) slotHolder(slot string) int32 {
	e.t.Helper()
	var pid *int32
	require.NoError(e.t, e.db.QueryRow(context.Background(), "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&pid))
	require.NotNil(e.t, pid, "slot %s not held", slot)
	return *pid
}

// waitNewHolder waits until a connection other than old holds the slot.
func (e *env) waitNewHolder(slot string, old int32, r *running) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var pid *int32
		require.NoError(e.t, e.db.QueryRow(context.Background(), "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&pid))
		if pid != nil && *pid != old {
			return
		}
		select {
		case err := <-r.done:
			e.t.Fatalf("daemon stopped instead of reconnecting: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	e.t.Fatal("the daemon did not take the slot again within 60s")
}
