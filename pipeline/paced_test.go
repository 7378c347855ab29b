package pipeline

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/feishu"
	"github.com/replicator-cdc/replicator/targets/gptbots"
	"github.com/replicator-cdc/replicator/targets/memory"
)

// Both API writers tell the pipeline their rate limit's backlog.
var (
	_ paced = (*feishu.Writer)(nil)
	_ paced = (*gptbots.Writer)(nil)
)

// backlogged is a writer whose rate-limit backlog the test sets.
type backlogged struct {
	concurrentMemory

	mu      sync.Mutex
	n       int
	changed chan struct{}
}

func (b *backlogged) Backlog() (int, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n, b.changed
}

func (b *backlogged) set(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n = n
	close(b.changed)
	b.changed = make(chan struct{})
}

// While the writer's requests queue for its rate limit, no batch is
// launched, although slots are free: the batches handed over meanwhile
// merge into the one ready to leave, updates of one key coalesced, and
// nothing is acknowledged. Once the backlog drains, that batch leaves as
// one write holding every change, and the transactions are acknowledged.
func TestBacklogHoldsBatchesBack(t *testing.T) {
	tbl := testTable(t)
	mem := memory.New()
	require.NoError(t, mem.Prepare(context.Background(), []replicator.TableSpec{tbl.Spec}))
	var mu sync.Mutex
	var rows []int
	mem.BeforeWrite = func(ctx context.Context, b replicator.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		rows = append(rows, len(b.Records))
		return nil
	}
	w := &backlogged{concurrentMemory: concurrentMemory{mem, 4}, n: maxBacklog, changed: make(chan struct{})}
	p := flushedPipeline([]Route{{Rule: tbl.Rule, Target: "mem", Writer: w}}, 100)
	defer p.Close()
	tr := NewTracker(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const txs = 10
	for tx := 1; tx <= txs; tx++ {
		p.Begin(tr, time.Now())
		require.NoError(t, p.Add(ctx, tbl, upsertOf(0, tx)))
		require.NoError(t, p.Add(ctx, tbl, upsertOf(2*tx, tx)))
		require.NoError(t, p.Add(ctx, tbl, upsertOf(2*tx+1, tx)))
		p.Commit(replicator.LSN(tx))
		require.NoError(t, p.Flush(ctx))
	}
	queue := p.queues[tbl.Rule].queue
	for i := 0; len(queue) > 0; i++ {
		require.Less(t, i, 10000, "the dispatcher never took the batches")
		time.Sleep(time.Millisecond)
	}
	w.set(maxBacklog + 3) // a change, yet still too many
	mu.Lock()
	require.Empty(t, rows, "no batch is launched into the backlog")
	mu.Unlock()
	require.Equal(t, replicator.LSN(0), tr.Acknowledged())

	w.set(maxBacklog - 1)
	require.NoError(t, p.WaitFor(ctx, tr.Idle))
	require.Equal(t, replicator.LSN(txs), tr.Acknowledged())
	mu.Lock()
	require.Equal(t, []int{1 + 2*txs}, rows, "one write holds every change")
	mu.Unlock()
	require.Equal(t, "\""+strconv.Itoa(txs)+"\"", mem.Rows("t")["0"]["body"])
	require.Equal(t, 1+2*txs, mem.Len("t"))
}

// A writer without a backlog below the bound is launched into as before:
// each flushed batch is written.
func TestSmallBacklogLaunches(t *testing.T) {
	tbl := testTable(t)
	mem := memory.New()
	require.NoError(t, mem.Prepare(context.Background(), []replicator.TableSpec{tbl.Spec}))
	w := &backlogged{concurrentMemory: concurrentMemory{mem, 4}, n: maxBacklog - 1, changed: make(chan struct{})}
	p := flushedPipeline([]Route{{Rule: tbl.Rule, Target: "mem", Writer: w}}, 100)
	defer p.Close()
	tr := NewTracker(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for tx := 1; tx <= 3; tx++ {
		p.Begin(tr, time.Now())
		require.NoError(t, p.Add(ctx, tbl, upsertOf(tx, tx)))
		p.Commit(replicator.LSN(tx))
		require.NoError(t, p.WaitFor(ctx, tr.Idle))
	}
	_, writes := mem.Stats()
	require.Equal(t, 3, writes)
}

// When the backlog drains, a table launches one batch and waits for the
// backlog to show it before the next: launched at once, its ready batches
// would all pass before the first of them reached the limiter.
func TestOneLaunchPerDrain(t *testing.T) {
	tbl := testTable(t)
	mem := memory.New()
	require.NoError(t, mem.Prepare(context.Background(), []replicator.TableSpec{tbl.Spec}))
	release, hanging := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	started := 0
	mem.BeforeWrite = func(ctx context.Context, b replicator.Batch) error {
		mu.Lock()
		started++
		first := started == 1
		mu.Unlock()
		if first {
			return hang(ctx, hanging, release)
		}
		return nil
	}
	w := &backlogged{concurrentMemory: concurrentMemory{mem, 4}, n: maxBacklog, changed: make(chan struct{})}
	p := flushedPipeline([]Route{{Rule: tbl.Rule, Target: "mem", Writer: w}}, 2)
	defer p.Close()
	tr := NewTracker(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for tx := range 2 {
		p.Begin(tr, time.Now())
		require.NoError(t, p.Add(ctx, tbl, upsertOf(2*tx, tx)))
		require.NoError(t, p.Add(ctx, tbl, upsertOf(2*tx+1, tx)))
		p.Commit(replicator.LSN(tx + 1))
	}
	queue := p.queues[tbl.Rule].queue
	for i := 0; len(queue) > 0; i++ {
		require.Less(t, i, 10000, "the dispatcher never took the batches")
		time.Sleep(time.Millisecond)
	}
	w.set(maxBacklog - 1)
	select {
	case <-hanging:
	case <-ctx.Done():
		t.Fatal("the first batch was never launched")
	}
	mu.Lock()
	require.Equal(t, 1, started, "the second batch waits for the first to show in the backlog")
	mu.Unlock()
	w.set(maxBacklog - 1) // the first reached the limiter
	require.NoError(t, p.WaitFor(ctx, func() bool { return mem.Len("t") == 2 }), "the second batch is launched")
	close(release)
	require.NoError(t, p.WaitFor(ctx, tr.Idle))
	require.Equal(t, 4, mem.Len("t"))
}
