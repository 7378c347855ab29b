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
	"github.com/replicator-cdc/replicator/replication"
	"github.com/replicator-cdc/replicator/targets/memory"
)

func testTable(t *testing.T) *mapping.Table {
	rule := &mapping.Rule{Source: "public.t", Target: "mem", Table: "t", Key: []string{"id"},
		Columns: []mapping.ColumnRule{{Source: "id", Target: "id"}, {Source: "body", Target: "body"}}, OnDelete: mapping.DeleteRow}
	rel := &replication.Relation{Namespace: "public", Name: "t", Columns: []replication.Column{{Name: "id", TypeOID: 20, Key: true}, {Name: "body", TypeOID: 25}}}
	tbl, err := mapping.Compile(rule, rel, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	return tbl
}

// Invariant 4: with a target that does not answer, the bytes in flight stay
// within the budget, the reader blocks instead of buffering, and while it
// blocks it keeps calling tick (which sends standby status updates).
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
	tr := NewTracker(0)
	body := make([]byte, 1000)
	for i := range body {
		body[i] = 'x'
	}
	const rows = 2000
	for i := 0; i < rows; i++ {
		p.Begin(tr, time.Now())
		rec, err := tbl.Upsert([]replication.Cell{{State: replication.CellText, Data: []byte(itoa(i))}, {State: replication.CellText, Data: body}}, replicator.LSN(i+1))
		require.NoError(t, err)
		require.NoError(t, p.Add(tbl, rec, tick))
		p.Commit(replicator.LSN(i + 1))
		require.LessOrEqual(t, p.InFlightBytes(), int64(budgetBytes))
	}
	require.NoError(t, p.WaitFor(context.Background(), tr.Idle, tick))
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
