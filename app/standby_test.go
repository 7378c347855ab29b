package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/targets/memory"
)

// instanceWriter is one instance's way to the shared target: it counts the
// records that instance wrote.
type instanceWriter struct {
	shared  *memory.Writer
	records atomic.Int64
}

func (w *instanceWriter) Prepare(ctx context.Context, tables []replicator.TableSpec) error {
	return w.shared.Prepare(ctx, tables)
}

func (w *instanceWriter) Write(ctx context.Context, b replicator.Batch) ([]replicator.Rejection, error) {
	w.records.Add(int64(len(b.Records)))
	return w.shared.Write(ctx, b)
}

// instance is a daemon of a test, with its own writer and monitor.
type instance struct {
	*running
	w   *instanceWriter
	mon *monitor.Monitor
}

func (e *env) startInstance(cfg *config.Config, name string, logs io.Writer) *instance {
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{running: &running{cancel: cancel, done: make(chan error, 1)}, w: &instanceWriter{shared: e.mem}, mon: monitor.New(prometheus.NewRegistry())}
	out := io.Writer(testWriter{e.t})
	if logs != nil {
		out = io.MultiWriter(out, logs)
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo})).With("instance", name)
	go func() {
		in.done <- app.Run(ctx, cfg, app.Deps{Logger: logger, Monitor: in.mon, Writers: map[string]replicator.Writer{"mem": in.w}})
	}()
	e.t.Cleanup(func() { in.stop() })
	return in
}

// waitPhase waits until the instance's phase is phase, failing if it stops.
func (in *instance) waitPhase(t *testing.T, phase string, timeout time.Duration) monitor.Snapshot {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		snap := in.mon.Snapshot()
		if snap.Phase == phase {
			return snap
		}
		if time.Now().After(deadline) {
			t.Fatalf("phase is %q, not %q, after %s", snap.Phase, phase, timeout)
		}
		select {
		case err := <-in.done:
			t.Fatalf("instance stopped while waiting for phase %s: %v", phase, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// A second instance on the same configuration, and a third with a state
// directory of its own, started while the first copies and then streams,
// wait as standbys: they write nothing and the mirror stays exact. When
// the first stops, the second takes over and the mirror stays exact.
func TestStandbyWritesNothing(t *testing.T) {
	e := newEnv(t, itemsSchema)
	e.exec(`INSERT INTO items (id, name, qty) SELECT g, 'name ' || g, g FROM generate_series(1, 3000) g`)
	// A slow target keeps the first instance in its snapshot a while.
	e.mem.BeforeWrite = func(ctx context.Context, _ replicator.Batch) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(150 * time.Millisecond):
			return nil
		}
	}
	cfg := e.config(itemsMapping)
	first := e.startInstance(cfg, "first", nil)
	first.waitPhase(t, "snapshot", 60*time.Second)

	second := e.startInstance(e.config(itemsMapping), "second", nil)
	own := e.config(itemsMapping)
	own.State.Dir = t.TempDir()
	third := e.startInstance(own, "third", nil)
	for _, in := range []*instance{second, third} {
		snap := in.waitPhase(t, "standby", 30*time.Second)
		require.Contains(t, snap.Standby, "waiting for the lock held by "+app.InstanceID())
	}
	require.Equal(t, "snapshot", first.mon.Snapshot().Phase, "the snapshot was over before the standbys started")

	first.waitPhase(t, "streaming", 60*time.Second)
	e.mem.BeforeWrite = nil
	for i := range 20 {
		e.exec(`UPDATE items SET qty = qty + 1 WHERE id % 20 = $1`, i)
		e.exec(`INSERT INTO items (id, name) VALUES ($1, 'streamed')`, 10000+i)
		e.exec(`DELETE FROM items WHERE id = $1`, 100+i)
	}
	e.waitMirror("items", "items", 60*time.Second, "id")
	require.Positive(t, first.w.records.Load())
	require.Zero(t, second.w.records.Load(), "the second instance wrote while the first was active")
	require.Zero(t, third.w.records.Load(), "the instance with its own state directory wrote while the first was active")
	for _, in := range []*instance{second, third} {
		require.Equal(t, "standby", in.mon.Snapshot().Phase)
	}

	// The instance with its own state would copy everything again; stop it
	// before the first goes, so that the second takes over.
	require.NoError(t, third.stop())
	require.NoError(t, first.stop())
	second.waitPhase(t, "streaming", 60*time.Second)
	e.exec(`UPDATE items SET name = 'after takeover' WHERE id <= 50`)
	e.exec(`DELETE FROM items WHERE id BETWEEN 51 AND 60`)
	e.waitMirror("items", "items", 60*time.Second, "id")
	require.Positive(t, second.w.records.Load())
	require.Zero(t, third.w.records.Load())
	require.NoError(t, second.stop())
}

// When the active instance loses its lock connection and another session
// takes the lock, it stops writing and waits as a standby; it takes over
// again once the lock is free, and the mirror converges.
func TestLostLockStopsWriting(t *testing.T) {
	e := newEnv(t, itemsSchema)
	e.exec(`INSERT INTO items (id, name, qty) SELECT g, 'name ' || g, g FROM generate_series(1, 100) g`)
	logs := &testkit.LockedBuffer{}
	d := e.startInstance(e.config(itemsMapping), "daemon", logs)
	d.waitPhase(t, "streaming", 60*time.Second)
	e.waitMirror("items", "items", 60*time.Second, "id")

	// Another session takes the lock the moment the daemon's session ends.
	rival := mustConnect(t, e.dsn)
	key := app.LockKey("slot_" + e.name)
	var pid int
	require.NoError(t, e.db.QueryRow(context.Background(), `
		SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
		  AND classid::int8 = $1 AND objid::int8 = $2`, int64(uint64(key)>>32), int64(uint64(key)&0xffffffff)).Scan(&pid))
	e.exec(`SELECT pg_terminate_backend($1)`, pid)
	_, err := rival.Exec(context.Background(), `SELECT pg_advisory_lock($1)`, key)
	require.NoError(t, err)

	d.waitPhase(t, "standby", 30*time.Second)
	written := d.w.records.Load()
	for i := range 10 {
		e.exec(`UPDATE items SET qty = -1 WHERE id = $1`, i+1)
	}
	time.Sleep(2 * time.Second)
	require.Equal(t, written, d.w.records.Load(), "a standby wrote")
	require.Equal(t, "standby", d.mon.Snapshot().Phase)
	require.Contains(t, logs.String(), "stopped writing: this instance is no longer the active one")

	_, err = rival.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, key)
	require.NoError(t, err)
	d.waitPhase(t, "streaming", 60*time.Second)
	e.waitMirror("items", "items", 60*time.Second, "id")
	require.NoError(t, d.stop())
}

// The commands that change the state refuse while a daemon is active (a
// resync of named tables goes to it, online, instead),
// naming it; status names it too.
func TestMaintenanceRefusedWhileActive(t *testing.T) {
	e := newEnv(t, itemsSchema)
	e.exec(`INSERT INTO items (id, name) VALUES (1, 'a')`)
	cfg := e.config(itemsMapping)
	d := e.startStreaming(cfg)
	ctx := context.Background()

	_, err := app.Resync(ctx, cfg, true, nil)
	require.ErrorContains(t, err, app.InstanceID())
	require.ErrorContains(t, err, "is the active daemon of slot")
	// One table is not refused: the active daemon copies it online.
	done, err := app.Resync(ctx, cfg, false, []string{"public.items"})
	require.NoError(t, err)
	require.Len(t, done, 1)
	require.Contains(t, done[0], "being copied again by the running daemon")
	_, err = app.AcceptSlot(ctx, cfg)
	require.ErrorContains(t, err, "is the active daemon of slot")
	_, err = app.Teardown(ctx, cfg)
	require.ErrorContains(t, err, "is the active daemon of slot")

	r, err := app.Status(ctx, cfg)
	require.NoError(t, err)
	require.NotNil(t, r.Active)
	require.Equal(t, app.InstanceID(), r.Active.Instance)

	require.NoError(t, d.stop())
	r, err = app.Status(ctx, cfg)
	require.NoError(t, err)
	require.Nil(t, r.Active)
	done, err = app.Resync(ctx, cfg, false, []string{"public.items"})
	require.NoError(t, err)
	require.Len(t, done, 1)
}

// A connection that is not a replicator (no lock) streaming from the slot
// stops the daemon that holds the lock, rather than sharing the slot.
func TestForeignSlotHolderRefused(t *testing.T) {
	e := newEnv(t, itemsSchema)
	e.exec(`INSERT INTO items (id, name) VALUES (1, 'a')`)
	cfg := e.config(itemsMapping)
	ctx := context.Background()
	holdSlot(t, e, e.dsn, "pg_recvlogical")

	logs := &testkit.LockedBuffer{}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	w := &instanceWriter{shared: memory.New()}
	err := app.Run(rctx, cfg, app.Deps{Logger: slog.New(slog.NewTextHandler(logs, nil)), Writers: map[string]replicator.Writer{"mem": w}})
	require.ErrorContains(t, err, "held by another connection")
	require.Zero(t, w.records.Load())
	require.True(t, strings.Contains(logs.String(), "waiting for it to be released"), fmt.Sprint(logs.String()))
}

// A replicator's walsender left behind on the slot (its machine is gone,
// and the server would notice only after wal_sender_timeout) is ended by
// the instance that took the lock over, which then streams.
func TestLeftBehindWalsenderEnded(t *testing.T) {
	e := newEnv(t, itemsSchema)
	e.exec(`INSERT INTO items (id, name) VALUES (1, 'a')`)
	cfg := e.config(itemsMapping)
	dsn := e.dsn + " application_name=replicator"
	if strings.HasPrefix(e.dsn, "postgres") {
		sep := "?"
		if strings.Contains(e.dsn, "?") {
			sep = "&"
		}
		dsn = e.dsn + sep + "application_name=replicator"
	}
	holdSlot(t, e, dsn, "replicator")
	e.exec(`INSERT INTO items (id, name) VALUES (2, 'b')`)
	logs := &testkit.LockedBuffer{}
	d := e.startInstance(cfg, "taker", logs)
	d.waitPhase(t, "streaming", 60*time.Second)
	e.waitMirror("items", "items", 60*time.Second, "id")
	require.Contains(t, logs.String(), "ended the replication connection a previous active instance left behind")
	require.NoError(t, d.stop())
}

// holdSlot creates the test's slot and publication and streams the slot
// with pg_recvlogical, whose connection is named name, until the test ends.
func holdSlot(t *testing.T, e *env, dsn, name string) {
	e.exec(`CREATE PUBLICATION pub_` + e.name + ` FOR TABLE items`)
	e.exec(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, "slot_"+e.name)
	slotHeldBy := func() string {
		var holder *string
		err := e.db.QueryRow(context.Background(), `SELECT a.application_name FROM pg_replication_slots s
			LEFT JOIN pg_stat_activity a ON a.pid = s.active_pid WHERE s.slot_name = $1`, "slot_"+e.name).Scan(&holder)
		if err != nil || holder == nil {
			return ""
		}
		return *holder
	}
	recv := exec.Command(filepath.Join(cluster.BinDir(), "pg_recvlogical"), "-d", dsn, "--slot", "slot_"+e.name, "--start", "-f", os.DevNull,
		"-o", "proto_version=1", "-o", "publication_names=pub_"+e.name)
	require.NoError(t, recv.Start())
	t.Cleanup(func() {
		_ = recv.Process.Kill()
		_ = recv.Wait()
	})
	testkit.Eventually(t, 30*time.Second, "pg_recvlogical to hold the slot", func() bool { return slotHeldBy() == name })
}
