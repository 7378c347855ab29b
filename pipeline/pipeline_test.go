package pipeline

import (
	"context"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/mapping"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/targets/memory"
)

func testTable(t *testing.T) *mapping.Table {
	rule := &mapping.Rule{Source: "public.t", Target: "mem", Table: "t", Key: []string{"id"},
		Columns: []mapping.ColumnRule{{Source: "id", Target: "id"}, {Source: "body", Target: "body"}}, OnDelete: mapping.DeleteRow}
	rel := &replicator.Relation{Namespace: "public", Name: "t", Columns: []replicator.Column{{Name: "id", TypeOID: 20, Key: true}, {Name: "body", TypeOID: 25}}}
	tbl, err := mapping.Compile(rule, rel, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	return tbl
}

// Invariant 4: with a target that does not answer, the bytes in flight stay
// within the budget, the reader blocks instead of buffering, and while it
// blocks it keeps calling its StatusUpdate (standby status updates).
func TestBackpressureBoundsMemoryAndKeepsTicking(t *testing.T) {
	tbl := testTable(t)
	w := memory.New()
	require.NoError(t, w.Prepare(context.Background(), []replicator.TableSpec{tbl.Spec}))
	release := make(chan struct{})
	w.BeforeWrite = func(ctx context.Context, _ replicator.Batch) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	const budgetBytes = 64 << 10
	p := New([]Route{{Rule: tbl.Rule, Target: "mem", Writer: w}}, nil, monitor.New(prometheus.NewRegistry()),
		Options{MaxInFlightBytes: budgetBytes, FlushInterval: time.Hour, BatchRows: 100, BatchBytes: 1 << 20, TickInterval: 20 * time.Millisecond},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer p.Close()

	var ticks, maxInFlight atomic.Int64
	tick := func() error {
		ticks.Add(1)
		if n := p.InFlightBytes(); n > maxInFlight.Load() {
			maxInFlight.Store(n)
		}
		if ticks.Load() == 10 {
			close(release)
		}
		return nil
	}
	p.SetStatusUpdate(tick)
	tr := NewTracker(0)
	body := make([]byte, 1000)
	for i := range body {
		body[i] = 'x'
	}
	const rows = 2000
	for i := 0; i < rows; i++ {
		p.Begin(tr, time.Now())
		rec, err := tbl.Upsert([]replicator.Cell{{State: replicator.CellText, Data: []byte(itoa(i))}, {State: replicator.CellText, Data: body}}, replicator.LSN(i+1))
		require.NoError(t, err)
		require.NoError(t, p.Add(context.Background(), tbl, rec))
		p.Commit(replicator.LSN(i + 1))
		require.LessOrEqual(t, p.InFlightBytes(), int64(budgetBytes))
	}
	require.NoError(t, p.WaitFor(context.Background(), tr.Idle))
	require.GreaterOrEqual(t, ticks.Load(), int64(10), "a blocked reader must keep ticking")
	require.LessOrEqual(t, maxInFlight.Load(), int64(budgetBytes))
	require.Equal(t, rows, w.Len("t"))
	require.Equal(t, replicator.LSN(rows), tr.Acknowledged())
}

func itoa(i int) string {
	return string(appendInt(nil, i))
}

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

// blockedTarget is a writer that does not answer until released.
func blockedTarget(t *testing.T, tbl *mapping.Table) (*memory.Writer, func()) {
	w := memory.New()
	require.NoError(t, w.Prepare(context.Background(), []replicator.TableSpec{tbl.Spec}))
	release := make(chan struct{})
	w.BeforeWrite = func(ctx context.Context, _ replicator.Batch) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return w, func() { close(release) }
}

// A stop signal ends the reader's waits for a down target — for budget
// (Add) and for room in a full queue (Flush) — without acknowledging
// anything unconfirmed, and a batch whose hand-off was cut short is still
// delivered by the drain that follows.
func TestStopEndsWaitsForADownTarget(t *testing.T) {
	cases := []struct {
		name  string
		opts  Options
		flush bool // hand over after every unit, so the queue fills before the budget
	}{
		{"budget", Options{MaxInFlightBytes: 16 << 10, FlushInterval: time.Hour, BatchRows: 5, BatchBytes: 1 << 20, TickInterval: 5 * time.Millisecond}, false},
		{"queue", Options{MaxInFlightBytes: 1 << 30, FlushInterval: time.Hour, BatchRows: 1, BatchBytes: 1 << 30, TickInterval: 5 * time.Millisecond}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tbl := testTable(t)
			w, release := blockedTarget(t, tbl)
			p := New([]Route{{Rule: tbl.Rule, Target: "mem", Writer: w}}, nil, monitor.New(prometheus.NewRegistry()), c.opts,
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			defer p.Close()
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			ticks := 0
			// Ticks come only from a reader that waits: the third one is
			// the stop signal.
			tick := func() error {
				if ticks++; ticks == 3 {
					stop()
				}
				return nil
			}
			p.SetStatusUpdate(tick)
			tr := NewTracker(0)
			body := make([]byte, 1000)
			var committed replicator.LSN
			var err error
			for i := 0; i < 1000 && err == nil; i++ {
				p.Begin(tr, time.Now())
				rec, rerr := tbl.Upsert([]replicator.Cell{{State: replicator.CellText, Data: []byte(itoa(i))}, {State: replicator.CellText, Data: body}}, replicator.LSN(i+1))
				require.NoError(t, rerr)
				if err = p.Add(ctx, tbl, rec); err != nil {
					break
				}
				p.Commit(replicator.LSN(i + 1))
				committed = replicator.LSN(i + 1)
				if c.flush {
					err = p.Flush(ctx)
				}
			}
			require.ErrorIs(t, err, context.Canceled, "the reader must give up its wait on the stop signal")
			require.Positive(t, committed)
			require.Less(t, tr.Acknowledged(), committed, "nothing unconfirmed may be acknowledged")

			drain, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			caughtUp := func() bool { return tr.Acknowledged() >= committed }
			require.ErrorIs(t, p.WaitFor(drain, caughtUp), context.DeadlineExceeded,
				"a drain ends at its deadline while the target is down")
			require.Zero(t, tr.Acknowledged())

			release()
			drain, cancel = context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			require.NoError(t, p.WaitFor(drain, caughtUp),
				"every committed unit, including one whose hand-off was cut short, lands once the target answers")
			require.Equal(t, committed, tr.Acknowledged())
		})
	}
}
