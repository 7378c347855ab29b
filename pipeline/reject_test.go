package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/mapping"
	"github.com/replicator-cdc/replicator/targets/memory"
)

// deadLetterLog is a DeadLetterWriter that keeps what it is given, or
// fails when fail is set.
type deadLetterLog struct {
	mu       sync.Mutex
	fail     error
	rejected []replicator.Rejection
}

func (d *deadLetterLog) Write(_ string, _ replicator.TableSpec, rejected []replicator.Rejection) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	d.rejected = append(d.rejected, rejected...)
	return nil
}

func (d *deadLetterLog) all() []replicator.Rejection {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]replicator.Rejection(nil), d.rejected...)
}

// countingObserver records what the workers report.
type countingObserver struct {
	mu                  sync.Mutex
	upserts, deadLetter int
}

func (o *countingObserver) Confirmed(_, _, _ string, upserts, _ int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.upserts += upserts
}

func (o *countingObserver) DeadLettered(_, _, _ string, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.deadLetter += n
}

func (o *countingObserver) Error(string, error) {}
func (o *countingObserver) InFlight(int64)      {}

func (o *countingObserver) counts() (upserts, deadLetters int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.upserts, o.deadLetter
}

func stampTable(t *testing.T, onReject mapping.RejectPolicy) *mapping.Table {
	t.Helper()
	rule := &mapping.Rule{Source: "public.ev", Target: "mem", Table: "ev", Key: []string{"id"}, OnDelete: mapping.DeleteRow, OnReject: onReject,
		Columns: []mapping.ColumnRule{{Source: "id", Target: "id"}, {Source: "at", Target: "at", Format: mapping.FormatUnixMS}}}
	rel := &replicator.Relation{Namespace: "public", Name: "ev", Columns: []replicator.Column{{Name: "id", TypeOID: pgtype.Int4OID}, {Name: "at", TypeOID: pgtype.TimestamptzOID}}}
	tbl, err := mapping.Compile(rule, rel, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	return tbl
}

func stampCells(id, at string) []replicator.Cell {
	return []replicator.Cell{{State: replicator.CellText, Data: []byte(id)}, {State: replicator.CellText, Data: []byte(at)}}
}

func newRejectPipeline(t *testing.T, tbl *mapping.Table, w replicator.Writer, dl DeadLetterWriter, obs Observer) *Pipeline {
	t.Helper()
	p := New([]Route{{Rule: tbl.Rule, Target: "mem", Writer: w}}, dl, obs,
		Options{MaxInFlightBytes: 1 << 20, FlushInterval: time.Hour, BatchRows: 100, BatchBytes: 1 << 20, TickInterval: 20 * time.Millisecond},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(p.Close)
	return p
}

// Invariant 1 with invariant 9: a value the mapping refused is on disk in
// the dead letters before its record is batched, so before its transaction
// can be acknowledged; the record itself lands without the value.
func TestValueRejectionDeadLetteredBeforeBatching(t *testing.T) {
	tbl := stampTable(t, mapping.RejectDeadLetter)
	w := memory.New()
	require.NoError(t, w.Prepare(context.Background(), []replicator.TableSpec{tbl.Spec}))
	dl := &deadLetterLog{}
	obs := &countingObserver{}
	p := newRejectPipeline(t, tbl, w, dl, obs)

	tr := NewTracker(0)
	p.Begin(tr, time.Now())
	rec, err := tbl.Upsert(stampCells("1", "infinity"), 10)
	require.NoError(t, err)
	require.NoError(t, p.Add(context.Background(), tbl, rec))
	got := dl.all()
	require.Len(t, got, 1, "the dead letter is written by Add, before anything can be acknowledged")
	require.Equal(t, "at", got[0].Column)
	require.Equal(t, "infinity", string(got[0].Value))
	require.Equal(t, replicator.LSN(10), got[0].Record.LSN)
	require.Empty(t, got[0].Record.Rejected)
	p.Commit(10)
	require.NoError(t, p.WaitFor(context.Background(), tr.Idle))
	require.Equal(t, replicator.LSN(10), tr.Acknowledged())
	require.Equal(t, memory.Row{"id": "1"}, w.Rows("ev")["1"])
	upserts, deadLetters := obs.counts()
	require.Equal(t, 1, upserts, "the record itself was confirmed")
	require.Equal(t, 1, deadLetters)

	// When the dead letter cannot be written, nothing is acknowledged.
	dl.fail = errors.New("disk full")
	p.Begin(tr, time.Now())
	rec, err = tbl.Upsert(stampCells("2", "-infinity"), 20)
	require.NoError(t, err)
	require.ErrorContains(t, p.Add(context.Background(), tbl, rec), "disk full")
	require.Equal(t, replicator.LSN(10), tr.Acknowledged())
}

func TestValueRejectionHalts(t *testing.T) {
	tbl := stampTable(t, mapping.RejectHalt)
	w := memory.New()
	require.NoError(t, w.Prepare(context.Background(), []replicator.TableSpec{tbl.Spec}))
	dl := &deadLetterLog{}
	p := newRejectPipeline(t, tbl, w, dl, &countingObserver{})
	p.Begin(NewTracker(0), time.Now())
	rec, err := tbl.Upsert(stampCells("7", "infinity"), 10)
	require.NoError(t, err)
	err = p.Add(context.Background(), tbl, rec)
	require.ErrorContains(t, err, "on_reject: halt")
	require.ErrorContains(t, err, "key id=7, column at")
	require.Empty(t, dl.all())
}

// columnRefuser writes every record but refuses its "at" value, the way a
// target writer reports a value its field cannot hold.
type columnRefuser struct{ *memory.Writer }

func (c columnRefuser) Write(ctx context.Context, b replicator.Batch) ([]replicator.Rejection, error) {
	var refused []replicator.Rejection
	for i := range b.Records {
		if v, ok := b.Records[i].Field("at"); ok {
			refused = append(refused, replicator.Rejection{Record: b.Records[i], Column: "at", Value: v.Raw, Reason: "field cannot hold it"})
		}
	}
	if _, err := c.Writer.Write(ctx, b); err != nil {
		return nil, err
	}
	return refused, nil
}

// A writer's column rejection is dead-lettered, and its record counts as
// confirmed: it was written, without that value.
func TestWriterColumnRejection(t *testing.T) {
	tbl := stampTable(t, mapping.RejectDeadLetter)
	w := columnRefuser{memory.New()}
	require.NoError(t, w.Prepare(context.Background(), []replicator.TableSpec{tbl.Spec}))
	dl := &deadLetterLog{}
	obs := &countingObserver{}
	p := newRejectPipeline(t, tbl, w, dl, obs)
	tr := NewTracker(0)
	p.Begin(tr, time.Now())
	for i, id := range []string{"1", "2"} {
		rec, err := tbl.Upsert(stampCells(id, "2024-01-01 00:00:00+00"), replicator.LSN(10+i))
		require.NoError(t, err)
		require.NoError(t, p.Add(context.Background(), tbl, rec))
	}
	p.Commit(11)
	require.NoError(t, p.WaitFor(context.Background(), tr.Idle))
	require.Equal(t, replicator.LSN(11), tr.Acknowledged())
	require.Len(t, dl.all(), 2)
	upserts, deadLetters := obs.counts()
	require.Equal(t, 2, upserts)
	require.Equal(t, 2, deadLetters)
}
