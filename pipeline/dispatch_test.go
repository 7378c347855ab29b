package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/mapping"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/targets/feishu"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
	"github.com/replicator-cdc/replicator/targets/memory"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func keyed(id int) []replicator.Field {
	return []replicator.Field{{Name: "id", Value: replicator.Value{Kind: replicator.KindInt, Raw: []byte(strconv.Itoa(id))}}}
}

func upsertOf(id, seq int) replicator.Record {
	key := keyed(id)
	return replicator.Record{Op: replicator.OpUpsert, Key: key, Fields: append(key[:1:1],
		replicator.Field{Name: "body", Value: replicator.Value{Kind: replicator.KindText, Raw: []byte(strconv.Itoa(seq))}})}
}

func deleteOf(id int) replicator.Record {
	return replicator.Record{Op: replicator.OpDelete, Key: keyed(id)}
}

// Invariant 2 under concurrency: many changes of a few keys, one per
// transaction, in small batches, through the real Feishu writer with eight
// requests in flight into a fake that applies each request after a random
// delay, so requests overtake each other whenever they travel together.
// Each key's changes must reach the fake in commit order (the arrival log
// shows an increasing subsequence of the commit sequence, each delete
// removing the row the key's previous change left) and the final rows must
// equal the source's last state.
func TestConcurrentBatchesKeepPerKeyOrder(t *testing.T) {
	fake := feishufake.New(feishufake.Options{RequestsPerSecond: -1, Jitter: 20 * time.Millisecond, History: true, Seed: 7})
	defer fake.Close()
	require.NoError(t, fake.AddTable("t", []feishufake.Column{
		{Name: "id", DataType: "bigint", IsUnique: true},
		{Name: "body", DataType: "text", AllowNull: true},
	}))
	w, err := feishu.New(feishu.Config{Name: "lark", BaseURL: fake.URL(), WorkspaceID: fake.Options().WorkspaceID,
		UserAccessToken: fake.AccessToken(), RequestsPerSecond: 10_000, MaxConcurrentRequests: 8}, feishu.Deps{})
	require.NoError(t, err)
	tbl := testTable(t)
	require.NoError(t, w.Prepare(context.Background(), []replicator.TableSpec{tbl.Spec}))
	p := New([]Route{{Rule: tbl.Rule, Target: "lark", Writer: w}}, nil, monitor.New(prometheus.NewRegistry()),
		Options{MaxInFlightBytes: 64 << 20, FlushInterval: time.Hour, BatchRows: 3, BatchBytes: 1 << 20, TickInterval: 20 * time.Millisecond},
		quietLogger())
	defer p.Close()

	const keys, changes = 6, 600
	rng := rand.New(rand.NewPCG(1, 2))
	last := map[int]int{} // key → seq of its last upsert, -1 when deleted
	tr := NewTracker(0)
	for seq := 1; seq <= changes; seq++ {
		id := rng.IntN(keys)
		rec := upsertOf(id, seq)
		if s, ok := last[id]; ok && s > 0 && rng.IntN(5) == 0 {
			rec = deleteOf(id)
			last[id] = -1
		} else {
			last[id] = seq
		}
		p.Begin(tr, time.Now())
		require.NoError(t, p.Add(context.Background(), tbl, rec))
		p.Commit(replicator.LSN(seq))
		// Hand batches over one by one now and then, so that batches of
		// every size and key mix travel together.
		if rng.IntN(4) == 0 {
			require.NoError(t, p.Flush(context.Background()))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, p.WaitFor(ctx, tr.Idle))
	require.Equal(t, replicator.LSN(changes), tr.Acknowledged())

	seen := map[string]int{} // key → seq of the row it holds, -1 when deleted
	for _, c := range fake.History("t") {
		id, body := fmt.Sprint(c.Row["id"]), fmt.Sprint(c.Row["body"])
		seq, err := strconv.Atoi(body)
		require.NoError(t, err)
		if c.Op == "delete" {
			require.Equal(t, seen[id], seq, "key %s: a delete removed the row of change %d, not the key's latest", id, seq)
			seen[id] = -1
			continue
		}
		require.Greater(t, seq, seen[id], "key %s: change %d arrived after a later one", id, seq)
		seen[id] = seq
	}
	rows := map[string]string{}
	for _, r := range fake.Rows("t") {
		rows[fmt.Sprint(r["id"])] = fmt.Sprint(r["body"])
	}
	for id, seq := range last {
		if seq < 0 {
			require.NotContains(t, rows, strconv.Itoa(id))
			continue
		}
		require.Equal(t, strconv.Itoa(seq), rows[strconv.Itoa(id)], "key %d", id)
	}
}

// concurrentMemory lets the in-memory writer take several batches at once.
type concurrentMemory struct {
	*memory.Writer
	n int
}

func (c concurrentMemory) MaxConcurrentRequests() int { return c.n }

// hang holds a write, once hanging is closed, until release is closed or
// the write's context ends.
func hang(ctx context.Context, hanging, release chan struct{}) error {
	close(hanging)
	select {
	case <-release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flushedPipeline writes batches of at most batchRows only when flushed
// (the flush interval is an hour), within a budget of 1 MiB.
func flushedPipeline(routes []Route, batchRows int) *Pipeline {
	return New(routes, nil, monitor.New(prometheus.NewRegistry()),
		Options{MaxInFlightBytes: 1 << 20, FlushInterval: time.Hour, BatchRows: batchRows, BatchBytes: 1 << 20, TickInterval: 20 * time.Millisecond},
		quietLogger())
}

// Invariant 1 under concurrency: when a later transaction's request is
// confirmed while an earlier one's is still in flight, the acknowledged
// position does not move past the earlier transaction; it moves to the
// end once that one is confirmed too.
func TestAckWaitsForEarlierRequestConfirmedLater(t *testing.T) {
	tbl := testTable(t)
	mem := memory.New()
	require.NoError(t, mem.Prepare(context.Background(), []replicator.TableSpec{tbl.Spec}))
	release, hanging := make(chan struct{}), make(chan struct{})
	mem.BeforeWrite = func(ctx context.Context, b replicator.Batch) error {
		if string(b.Records[0].Key[0].Value.Raw) != "1" {
			return nil
		}
		return hang(ctx, hanging, release)
	}
	p := flushedPipeline([]Route{{Rule: tbl.Rule, Target: "mem", Writer: concurrentMemory{mem, 4}}}, 100)
	defer p.Close()
	tr := NewTracker(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for id := 1; id <= 3; id++ {
		p.Begin(tr, time.Now())
		require.NoError(t, p.Add(context.Background(), tbl, upsertOf(id, id)))
		p.Commit(replicator.LSN(id * 10))
		require.NoError(t, p.Flush(context.Background()))
		// Each in flight before the next comes, which would otherwise
		// join its batch while it waits for a slot.
		if id == 1 {
			select {
			case <-hanging:
			case <-ctx.Done():
				t.Fatal("the first batch never reached the writer")
			}
		}
		require.NoError(t, p.WaitFor(ctx, func() bool { return mem.Len("t") == id-1 }))
	}
	require.NoError(t, p.WaitFor(ctx, func() bool { return mem.Len("t") == 2 }),
		"the later transactions' batches are written while the first waits")
	_, writes := mem.Stats()
	require.Equal(t, 2, writes)
	require.Equal(t, replicator.LSN(0), tr.Acknowledged(), "nothing is acknowledged past the unconfirmed first transaction")
	close(release)
	require.NoError(t, p.WaitFor(ctx, tr.Idle))
	require.Equal(t, replicator.LSN(30), tr.Acknowledged())
}

// Batches sharing a key are never in flight together, even when the
// target allows many requests: the second waits for the first.
func TestBatchesSharingAKeyWaitForEachOther(t *testing.T) {
	tbl := testTable(t)
	mem := memory.New()
	require.NoError(t, mem.Prepare(context.Background(), []replicator.TableSpec{tbl.Spec}))
	var mu sync.Mutex
	inFlight, most := 0, 0
	mem.BeforeWrite = func(ctx context.Context, b replicator.Batch) error {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		return nil
	}
	p := flushedPipeline([]Route{{Rule: tbl.Rule, Target: "mem", Writer: concurrentMemory{mem, 8}}}, 1)
	defer p.Close()
	tr := NewTracker(0)
	for seq := 1; seq <= 40; seq++ {
		p.Begin(tr, time.Now())
		require.NoError(t, p.Add(context.Background(), tbl, upsertOf(7, seq)))
		p.Commit(replicator.LSN(seq))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, p.WaitFor(ctx, tr.Idle))
	require.Equal(t, 1, most, "batches of one key must not be in flight together")
	require.Equal(t, "\"40\"", mem.Rows("t")["7"]["body"])
}

// Tables of one target share its slots: a table whose batch was written
// gives its slot back although no new batch of it comes, so another table
// of the target proceeds.
func TestTablesShareTheTargetsSlots(t *testing.T) {
	a, b := testTable(t), testTable(t)
	b.Rule = &mapping.Rule{Source: "public.u", Target: "mem", Table: "u", Key: []string{"id"},
		Columns: []mapping.ColumnRule{{Source: "id", Target: "id"}, {Source: "body", Target: "body"}}, OnDelete: mapping.DeleteRow}
	b.Spec = b.Rule.Spec()
	mem := memory.New()
	require.NoError(t, mem.Prepare(context.Background(), []replicator.TableSpec{a.Spec, b.Spec}))
	w := concurrentMemory{mem, 1}
	p := flushedPipeline([]Route{{Rule: a.Rule, Target: "mem", Writer: w}, {Rule: b.Rule, Target: "mem", Writer: w}}, 1)
	defer p.Close()
	tr := NewTracker(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p.Begin(tr, time.Now())
	require.NoError(t, p.Add(ctx, b, upsertOf(1, 1)))
	p.Commit(1)
	require.NoError(t, p.WaitFor(ctx, tr.Idle))
	for seq := 2; seq <= 5; seq++ {
		p.Begin(tr, time.Now())
		require.NoError(t, p.Add(ctx, a, upsertOf(seq, seq)))
		p.Commit(replicator.LSN(seq))
	}
	require.NoError(t, p.WaitFor(ctx, tr.Idle), "table t waits for the slot table u no longer uses")
	require.Equal(t, 4, mem.Len("t"))
}

// A batch waiting for a key in flight does not hold back later batches of
// other keys, and a later batch sharing a key with a waiting batch waits
// for it although that key is not in flight: here the first write of key
// 1 hangs; the batch of key 3 is written meanwhile, the batches of keys
// 1+2 and then 2 wait, and once released every key holds its last change.
func TestBlockedBatchDoesNotHoldBackOtherKeys(t *testing.T) {
	tbl := testTable(t)
	mem := memory.New()
	require.NoError(t, mem.Prepare(context.Background(), []replicator.TableSpec{tbl.Spec}))
	release, hanging := make(chan struct{}), make(chan struct{})
	mem.BeforeWrite = func(ctx context.Context, b replicator.Batch) error {
		if string(b.Records[0].Key[0].Value.Raw) != "1" || string(b.Records[0].Fields[1].Value.Raw) != "1" {
			return nil
		}
		return hang(ctx, hanging, release)
	}
	p := flushedPipeline([]Route{{Rule: tbl.Rule, Target: "mem", Writer: concurrentMemory{mem, 4}}}, 100)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr := NewTracker(0)
	seq := 0
	for _, ids := range [][]int{{1}, {1, 2}, {2}, {3}} {
		seq++
		p.Begin(tr, time.Now())
		for _, id := range ids {
			require.NoError(t, p.Add(ctx, tbl, upsertOf(id, seq)))
		}
		p.Commit(replicator.LSN(seq))
		require.NoError(t, p.Flush(ctx))
		if seq == 1 {
			// In flight before the next batch comes, which would
			// otherwise join it while it waits for a slot.
			select {
			case <-hanging:
			case <-ctx.Done():
				t.Fatal("the first batch never reached the writer")
			}
		}
	}
	require.NoError(t, p.WaitFor(ctx, func() bool { return mem.Len("t") == 1 }),
		"the batch of key 3 is written while the first batch of key 1 hangs")
	_, writes := mem.Stats()
	require.Equal(t, 1, writes, "only the batch of key 3 is written meanwhile")
	require.Contains(t, mem.Rows("t"), "3")
	require.Equal(t, replicator.LSN(0), tr.Acknowledged())
	close(release)
	require.NoError(t, p.WaitFor(ctx, tr.Idle))
	require.Equal(t, replicator.LSN(4), tr.Acknowledged())
	rows := mem.Rows("t")
	require.Equal(t, `"2"`, rows["1"]["body"])
	require.Equal(t, `"3"`, rows["2"]["body"])
	require.Equal(t, `"4"`, rows["3"]["body"])
}

// A key changed in every transaction does not chain every batch to the
// one before: while the first write of hot key 0 hangs, the second batch
// waits for it, and every later batch's change of key 0 joins that
// waiting batch, so the later batches (their other keys) are written
// meanwhile. Key 0 is written twice in all, ending with its last change,
// and nothing is acknowledged before it is.
func TestHotKeyJoinsTheWaitingBatch(t *testing.T) {
	tbl := testTable(t)
	mem := memory.New()
	require.NoError(t, mem.Prepare(context.Background(), []replicator.TableSpec{tbl.Spec}))
	release, hanging := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	hot := 0 // writes of key 0
	mem.BeforeWrite = func(ctx context.Context, b replicator.Batch) error {
		first := false
		for _, r := range b.Records {
			if string(r.Key[0].Value.Raw) == "0" {
				mu.Lock()
				hot++
				first = hot == 1
				mu.Unlock()
			}
		}
		if !first {
			return nil
		}
		return hang(ctx, hanging, release)
	}
	p := flushedPipeline([]Route{{Rule: tbl.Rule, Target: "mem", Writer: concurrentMemory{mem, 4}}}, 2)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr := NewTracker(0)
	const batches = 10
	for seq := 1; seq <= batches; seq++ {
		p.Begin(tr, time.Now())
		require.NoError(t, p.Add(ctx, tbl, upsertOf(0, seq)))
		require.NoError(t, p.Add(ctx, tbl, upsertOf(seq, seq)))
		p.Commit(replicator.LSN(seq))
		if seq == 1 {
			select {
			case <-hanging:
			case <-ctx.Done():
				t.Fatal("the first batch never reached the writer")
			}
		}
	}
	require.NoError(t, p.WaitFor(ctx, func() bool { return mem.Len("t") == batches-2 }),
		"the batches after the second are written while the first hangs")
	require.Equal(t, replicator.LSN(0), tr.Acknowledged())
	close(release)
	require.NoError(t, p.WaitFor(ctx, tr.Idle))
	require.Equal(t, replicator.LSN(batches), tr.Acknowledged())
	require.Equal(t, 2, hot, "key 0 is written by the first batch and by the one its later changes joined")
	rows := mem.Rows("t")
	require.Len(t, rows, batches+1)
	require.Equal(t, strconv.Quote(strconv.Itoa(batches)), rows["0"]["body"])
	for seq := 1; seq <= batches; seq++ {
		require.Equal(t, strconv.Quote(strconv.Itoa(seq)), rows[strconv.Itoa(seq)]["body"])
	}
}

// Batches that wait for a slot are filled up to batch_rows by the batches
// after them (the quota counts requests): while the only slot is taken by
// a hanging write, three one-row batches of other keys arrive; the first
// takes the other two, so that four batches make two writes.
func TestWaitingBatchIsFilledUp(t *testing.T) {
	tbl := testTable(t)
	mem := memory.New()
	require.NoError(t, mem.Prepare(context.Background(), []replicator.TableSpec{tbl.Spec}))
	release, hanging := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	mem.BeforeWrite = func(ctx context.Context, b replicator.Batch) error {
		mu.Lock()
		sizes = append(sizes, len(b.Records))
		first := len(sizes) == 1
		mu.Unlock()
		if !first {
			return nil
		}
		return hang(ctx, hanging, release)
	}
	p := flushedPipeline([]Route{{Rule: tbl.Rule, Target: "mem", Writer: mem}}, 100)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr := NewTracker(0)
	for id := 1; id <= 4; id++ {
		p.Begin(tr, time.Now())
		require.NoError(t, p.Add(ctx, tbl, upsertOf(id, id)))
		p.Commit(replicator.LSN(id))
		require.NoError(t, p.Flush(ctx))
		if id == 1 {
			select {
			case <-hanging:
			case <-ctx.Done():
				t.Fatal("the first batch never reached the writer")
			}
		}
	}
	// Every batch taken from the queue (and so added) before the slot
	// comes free.
	require.NoError(t, p.WaitFor(ctx, func() bool { return len(p.queues[tbl.Rule].queue) == 0 }))
	close(release)
	require.NoError(t, p.WaitFor(ctx, tr.Idle))
	require.Equal(t, replicator.LSN(4), tr.Acknowledged())
	require.Equal(t, 4, mem.Len("t"))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []int{1, 3}, sizes, "rows per write")
}
