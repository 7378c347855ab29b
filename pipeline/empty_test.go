package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
)

// orderWriter takes several requests at once and records the order in
// which writes and emptyings finish; the first write holds until the
// emptying starts or a bound passes, so an emptying that overtakes it is
// seen.
type orderWriter struct {
	mu       sync.Mutex
	done     []string
	emptying chan struct{}
}

func (w *orderWriter) MaxConcurrentRequests() int { return 4 }

func (w *orderWriter) Prepare(context.Context, []replicator.TableSpec) error { return nil }

func (w *orderWriter) Write(_ context.Context, b replicator.Batch) ([]replicator.Rejection, error) {
	key := string(b.Records[0].Key[0].Value.Raw)
	if key == "1" {
		select {
		case <-w.emptying:
		case <-time.After(2 * time.Second):
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = append(w.done, key)
	return nil, nil
}

func (w *orderWriter) Empty(context.Context, replicator.TableSpec) error {
	close(w.emptying)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = append(w.done, "empty")
	return nil
}

// An emptying (on_truncate: empty) waits for the table's batches before
// it and holds back those after it, even with several batches in flight.
func TestEmptyIsABarrier(t *testing.T) {
	tbl := testTable(t)
	w := &orderWriter{emptying: make(chan struct{})}
	p := flushedPipeline([]Route{{Rule: tbl.Rule, Target: "mem", Writer: w}}, 1)
	defer p.Close()
	ctx := context.Background()
	tr := NewTracker(0)
	add := func(id string) {
		rec, err := tbl.Upsert([]replicator.Cell{{State: replicator.CellText, Data: []byte(id)}, {State: replicator.CellText, Data: []byte("x")}}, 1)
		require.NoError(t, err)
		require.NoError(t, p.Add(ctx, tbl, rec))
	}
	p.Begin(tr, time.Now())
	add("1")
	require.NoError(t, p.Empty(ctx, tbl))
	add("2")
	p.Commit(1)
	require.NoError(t, p.WaitFor(ctx, tr.Idle))
	require.Equal(t, []string{"1", "empty", "2"}, w.done)
}
