package app_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/monitor"
)

// A stop signal is honoured while a target is down and the reader is
// blocked on a full byte budget or a full queue: Run returns nil within the
// drain bound, the slot does not pass the unconfirmed changes, and a restart
// with the target back delivers them.
func TestStopWhileTargetDownAndPipelineFull(t *testing.T) {
	cases := []struct {
		name      string
		batchRows int
		budget    int64
	}{
		{"budget", 10, 32 << 10},
		{"queue", 1, 8 << 20}, // 64 batches of one row fill the queue long before the budget
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, itemsSchema)
			var down atomic.Bool
			var blockedWrites atomic.Int64
			e.mem.BeforeWrite = func(ctx context.Context, _ replicator.Batch) error {
				if !down.Load() {
					return nil
				}
				blockedWrites.Add(1)
				<-ctx.Done() // a target that never answers
				return ctx.Err()
			}
			cfg := e.config(itemsMapping)
			cfg.Pipeline.BatchRows = c.batchRows
			cfg.Pipeline.BatchBytes = 16 << 10
			cfg.Pipeline.MaxInFlightBytes = c.budget
			cfg.Pipeline.ShutdownTimeout = 2 * time.Second
			daemon := e.startStreaming(cfg)
			e.exec(`INSERT INTO items (id, name) VALUES (0, 'before')`)
			e.waitMirror("items", "items", 30*time.Second, "id")
			acked := e.currentLSN()
			testkit.Eventually(t, 15*time.Second, "the first row to be acknowledged", func() bool { return e.lsnAtLeast(e.slotFlushed(), acked) })

			down.Store(true)
			e.exec(`INSERT INTO items (id, name) SELECT g, repeat('x', 1000) FROM generate_series(1, 3000) g`)
			committed := e.currentLSN()
			testkit.Eventually(t, 30*time.Second, "a write to reach the down target", func() bool { return blockedWrites.Load() > 0 })
			// Let the reader run into the full budget or queue; the test
			// holds either way, this only makes the blocked state likely.
			time.Sleep(time.Second)

			stopped := make(chan error, 1)
			go func() { stopped <- daemon.stop() }()
			select {
			case err := <-stopped:
				require.NoError(t, err, "a stop with a down target is a clean stop")
			case <-time.After(30 * time.Second):
				t.Fatal("the daemon did not stop within 30s of the stop signal while the target was down")
			}
			require.False(t, e.lsnAtLeast(e.slotFlushed(), committed), "the slot passed changes the target never confirmed: flushed %s, commit %s", e.slotFlushed(), committed)

			down.Store(false)
			daemon = e.start(cfg)
			e.waitMirror("items", "items", 60*time.Second, "id")
			testkit.Eventually(t, 15*time.Second, "the resent changes to be acknowledged", func() bool { return e.lsnAtLeast(e.slotFlushed(), committed) })
			require.NoError(t, daemon.stop())
		})
	}
}

// The same during the initial snapshot: a chunk cut short by the stop is
// copied again by the next run.
func TestStopDuringSnapshotWithTargetDown(t *testing.T) {
	e := newEnv(t, itemsSchema)
	e.exec(`INSERT INTO items (id, name) SELECT g, repeat('x', 1000) FROM generate_series(1, 3000) g`)
	var down atomic.Bool
	down.Store(true)
	var blockedWrites atomic.Int64
	e.mem.BeforeWrite = func(ctx context.Context, _ replicator.Batch) error {
		if !down.Load() {
			return nil
		}
		blockedWrites.Add(1)
		<-ctx.Done()
		return ctx.Err()
	}
	cfg := e.config(itemsMapping)
	cfg.Pipeline.BatchRows = 10
	cfg.Pipeline.BatchBytes = 16 << 10
	cfg.Pipeline.MaxInFlightBytes = 32 << 10
	cfg.Pipeline.ShutdownTimeout = 2 * time.Second
	daemon := e.start(cfg)
	testkit.Eventually(t, 30*time.Second, "a write to reach the down target", func() bool { return blockedWrites.Load() > 0 })
	time.Sleep(time.Second)

	stopped := make(chan error, 1)
	go func() { stopped <- daemon.stop() }()
	select {
	case err := <-stopped:
		require.NoError(t, err, "a stop during the snapshot with a down target is a clean stop")
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not stop within 30s of the stop signal while the target was down")
	}

	down.Store(false)
	daemon = e.start(cfg)
	e.waitMirror("items", "items", 60*time.Second, "id")
	require.NoError(t, daemon.stop())
}

// A clean stop ends the replication connection with CopyDone and
// Terminate: the server does not log it as a lost standby.
func TestCleanStopLeavesNoEOFInServerLog(t *testing.T) {
	if cluster.LogPath() == "" {
		t.Skip("the server's log is not readable here (external server)")
	}
	e := newEnv(t, itemsSchema)
	daemon := e.startStreaming(e.config(itemsMapping))
	e.exec(`INSERT INTO items (id, name) VALUES (1, 'one')`)
	e.waitMirror("items", "items", 30*time.Second, "id")
	var pid int
	require.NoError(t, e.db.QueryRow(context.Background(), "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", "slot_"+e.name).Scan(&pid))
	require.NoError(t, daemon.stop())
	// The walsender releases the slot as it exits, after logging.
	testkit.Eventually(t, 30*time.Second, "the walsender to exit", func() bool {
		var n int
		require.NoError(t, e.db.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n))
		return n == 0
	})
	b, err := os.ReadFile(cluster.LogPath())
	require.NoError(t, err)
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, fmt.Sprintf("[%d]", pid)) {
			lines = append(lines, l)
		}
	}
	require.NotContains(t, strings.Join(lines, "\n"), "unexpected EOF on standby connection")
	t.Logf("walsender %d logged:\n%s", pid, strings.Join(lines, "\n"))
}

// While it drains after a stop signal the daemon says so (phase
// "stopping", so /readyz is not ready), rather than "streaming".
func TestDrainShowsPhaseStopping(t *testing.T) {
	e := newEnv(t, itemsSchema)
	var down atomic.Bool
	var blockedWrites atomic.Int64
	e.mem.BeforeWrite = func(ctx context.Context, _ replicator.Batch) error {
		if !down.Load() {
			return nil
		}
		blockedWrites.Add(1)
		<-ctx.Done()
		return ctx.Err()
	}
	cfg := e.config(itemsMapping)
	cfg.Pipeline.ShutdownTimeout = 3 * time.Second
	mon := monitor.New(prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg, app.Deps{Logger: quietLogger(), Monitor: mon, Writers: writers(e)}) }()
	testkit.Eventually(t, 30*time.Second, "streaming", func() bool { return mon.Snapshot().Phase == "streaming" })

	down.Store(true)
	e.exec(`INSERT INTO items (id, name) VALUES (1, 'held')`)
	testkit.Eventually(t, 30*time.Second, "a write to reach the down target", func() bool { return blockedWrites.Load() > 0 })
	cancel()
	// The drain waits for the down target until its deadline; the phase
	// is read until Run returns, however long that takes.
	var phases []string
	giveUp := time.After(30 * time.Second)
	for {
		select {
		case err := <-done:
			require.NoError(t, err)
			require.Contains(t, phases, "stopping", "phases seen after the stop signal: %v", phases)
			require.Equal(t, "stopped", mon.Snapshot().Phase)
			return
		case <-time.After(10 * time.Millisecond):
			if p := mon.Snapshot().Phase; len(phases) == 0 || phases[len(phases)-1] != p {
				phases = append(phases, p)
			}
		case <-giveUp:
			t.Fatal("the daemon did not stop within 30s")
		}
	}
}
