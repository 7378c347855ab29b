package pipeline

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/mapping"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/targets/memory"
)

// resyncRel is public.t (id, code, body), relation 1.
var resyncRel = &replicator.Relation{ID: 1, Namespace: "public", Name: "t", ReplicaIdentity: 'f', Columns: []replicator.Column{
	{Name: "id", TypeOID: 20, Key: true}, {Name: "code", TypeOID: 20}, {Name: "body", TypeOID: 25}}}

// resyncRule maps public.t into table, keyed by key.
func resyncRule(table, key string) *mapping.Rule {
	return &mapping.Rule{Source: "public.t", Target: "mem", Table: table, Key: []string{key}, OnDelete: mapping.DeleteRow,
		Columns: []mapping.ColumnRule{{Source: "id", Target: "id"}, {Source: "code", Target: "code"}, {Source: "body", Target: "body"}}}
}

// resyncHarness is a stream sink over a memory target, with an online
// resync of public.t under way (Track ran, as the resyncer does first).
type resyncHarness struct {
	t      *testing.T
	w      *memory.Writer
	sink   *StreamSink
	r      *Resyncs
	tables []*mapping.Table
	lsn    replicator.LSN
}

func newResyncHarness(t *testing.T, rules ...*mapping.Rule) *resyncHarness {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	w := memory.New()
	routes := make([]Route, len(rules))
	h := &resyncHarness{t: t, w: w, r: &Resyncs{}}
	for i, rule := range rules {
		require.NoError(t, w.Prepare(context.Background(), []replicator.TableSpec{rule.Spec()}))
		routes[i] = Route{Rule: rule, Target: "mem", Writer: w}
		tbl, err := mapping.Compile(rule, resyncRel, nil, logger)
		require.NoError(t, err)
		h.tables = append(h.tables, tbl)
	}
	// One row per batch: every record is a batch of its own, and batches
	// of one table go out concurrently unless they share a key.
	p := New(routes, nil, monitor.New(prometheus.NewRegistry()),
		Options{MaxInFlightBytes: 64 << 20, FlushInterval: time.Millisecond, BatchRows: 1, BatchBytes: 1 << 20, TickInterval: 20 * time.Millisecond}, logger)
	t.Cleanup(p.Close)
	h.sink = NewStreamSink(context.Background(), p, mapping.NewMapper(rules, nil, logger), 0, logger)
	h.sink.Resync(h.r)
	h.handle(&replicator.Message{Kind: replicator.MessageRelation, Relation: resyncRel})
	h.r.Track("public.t")
	return h
}

func (h *resyncHarness) handle(m *replicator.Message) {
	h.t.Helper()
	require.NoError(h.t, h.sink.Handle(m))
}

func resyncCells(vals ...string) []replicator.Cell {
	out := make([]replicator.Cell, len(vals))
	for i, v := range vals {
		out[i] = replicator.Cell{State: replicator.CellText, Data: []byte(v)}
	}
	return out
}

// txn streams one transaction xid holding one change.
func (h *resyncHarness) txn(xid uint32, kind replicator.MessageKind, vals ...string) {
	h.lsn += 10
	h.handle(&replicator.Message{Kind: replicator.MessageBegin, LSN: h.lsn, Xid: xid})
	m := &replicator.Message{Kind: kind, RelationID: 1}
	if kind == replicator.MessageDelete {
		m.Old = resyncCells(vals...)
	} else {
		m.New = resyncCells(vals...)
	}
	h.handle(m)
	h.handle(&replicator.Message{Kind: replicator.MessageCommit, LSN: h.lsn, EndLSN: h.lsn + 1})
}

func (h *resyncHarness) mark(kind, id string) {
	h.lsn += 10
	h.handle(&replicator.Message{Kind: replicator.MessageLogical, LSN: h.lsn, Prefix: ResyncPrefix, Content: []byte(kind + " public.t " + id)})
}

// chunk offers rows read with a snapshot that sees every transaction but
// unseen, and streams its high watermark.
func (h *resyncHarness) chunk(id string, last bool, unseen []uint32, rows ...[]string) *ResyncChunk {
	c := &ResyncChunk{Tables: h.tables, Last: last, Emitted: make(chan struct{}), Visible: func(xid uint32) bool {
		for _, u := range unseen {
			if u == xid {
				return false
			}
		}
		return true
	}}
	for _, r := range rows {
		c.Rows = append(c.Rows, resyncCells(r...))
	}
	h.r.Offer("public.t "+id, c)
	h.mark("high", id)
	select {
	case <-c.Emitted:
	default:
		h.t.Fatal("the chunk was not emitted at its high watermark")
	}
	return c
}

func (h *resyncHarness) rows(table string) map[string]memory.Row {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(h.t, h.sink.Drain(ctx))
	return h.w.Rows(table)
}

// A transaction whose commit the stream met before the chunk's low
// watermark, but that the chunk's read did not see yet (its commit record
// is in the WAL before it shows in snapshots), wins over the chunk: the
// stream follows the table from the resync's start, not from its first
// low watermark.
func TestResyncChangeBeforeLowUnseenByChunkWins(t *testing.T) {
	h := newResyncHarness(t, resyncRule("t", "id"))
	h.txn(100, replicator.MessageInsert, "1", "10", "new")
	h.txn(101, replicator.MessageDelete, "2", "20", "old")
	h.mark("low", "run-1")
	c := h.chunk("run-1", true, []uint32{100, 101}, []string{"1", "10", "old"}, []string{"2", "20", "old"}, []string{"3", "30", "three"})
	require.Equal(t, 1, c.Kept)
	require.Equal(t, map[string]memory.Row{
		"1": {"id": "1", "code": "10", "body": `"new"`},
		"3": {"id": "3", "code": "30", "body": `"three"`},
	}, h.rows("t"))
}

// A change inside the window wins; a change after the high watermark
// lands after the chunk's row of its key; a delete inside the window is
// not undone by the chunk.
func TestResyncWindowAndStreamOrder(t *testing.T) {
	h := newResyncHarness(t, resyncRule("t", "id"))
	h.mark("low", "run-1")
	h.txn(200, replicator.MessageUpdate, "1", "10", "in window")
	h.txn(201, replicator.MessageDelete, "2", "20", "old")
	h.chunk("run-1", false, nil, []string{"1", "10", "read"}, []string{"2", "20", "read"}, []string{"3", "30", "read"})
	h.txn(202, replicator.MessageUpdate, "3", "30", "after high")
	h.txn(203, replicator.MessageDelete, "3", "30", "after high")
	h.txn(204, replicator.MessageInsert, "3", "30", "again")
	h.mark("low", "run-2")
	h.chunk("run-2", true, nil, []string{"4", "40", "read"})
	require.Equal(t, map[string]memory.Row{
		"1": {"id": "1", "code": "10", "body": `"in window"`},
		"3": {"id": "3", "code": "30", "body": `"again"`},
		"4": {"id": "4", "code": "40", "body": `"read"`},
	}, h.rows("t"))
}

// With a fan-out whose mappings have different keys, a change in the
// window drops only the row of the mapping whose key it changed: another
// mapping's row whose key reads the same stays.
func TestResyncFanOutWindowsPerMapping(t *testing.T) {
	h := newResyncHarness(t, resyncRule("by_id", "id"), resyncRule("by_code", "code"))
	h.mark("low", "run-1")
	// by_code's key 1 changes in the window; by_id's key 1 does not.
	h.txn(400, replicator.MessageUpdate, "5", "1", "in window")
	c := h.chunk("run-1", true, nil, []string{"1", "7", "read"}, []string{"5", "1", "stale read"})
	require.Equal(t, 2, c.Kept, "by_id keeps both rows; by_code keeps key 7 only")
	require.Equal(t, map[string]memory.Row{
		"1": {"id": "1", "code": "7", "body": `"read"`},
		"5": {"id": "5", "code": "1", "body": `"in window"`},
	}, h.rows("by_id"))
	require.Equal(t, map[string]memory.Row{
		"1": {"id": "5", "code": "1", "body": `"in window"`},
		"7": {"id": "1", "code": "7", "body": `"read"`},
	}, h.rows("by_code"))
}
