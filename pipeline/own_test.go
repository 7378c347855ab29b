package pipeline

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/mapping"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/targets/memory"
)

// Invariant 4: the stream's message data is the sink's only until Handle
// returns (a decoder may read the next frame into the same buffer).
// Changes held in batches behind a target that does not answer yet land
// as they were after every message's buffer was overwritten, so nothing in
// the pipeline keeps the messages alive.
func TestStreamSinkKeepsNoMessageBytes(t *testing.T) {
	rule := &mapping.Rule{Source: "public.t", Target: "mem", Table: "t", Key: []string{"id"}, OnDelete: mapping.DeleteRow,
		Columns: []mapping.ColumnRule{{Source: "id", Target: "id"}, {Source: "body", Target: "body"}}}
	rel := &replicator.Relation{ID: 1, Namespace: "public", Name: "t", ReplicaIdentity: 'f', Columns: []replicator.Column{
		{Name: "id", TypeOID: 20, Key: true}, {Name: "blob", TypeOID: 25, Key: true}, {Name: "body", TypeOID: 25, Key: true}}}
	w := memory.New()
	require.NoError(t, w.Prepare(context.Background(), []replicator.TableSpec{rule.Spec()}))
	release := make(chan struct{})
	w.BeforeWrite = func(ctx context.Context, _ replicator.Batch) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := New([]Route{{Rule: rule, Target: "mem", Writer: w}}, nil, monitor.New(prometheus.NewRegistry()),
		Options{MaxInFlightBytes: 64 << 20, FlushInterval: time.Hour, BatchRows: 2, BatchBytes: 1 << 20, TickInterval: 20 * time.Millisecond}, logger)
	defer p.Close()
	sink := NewStreamSink(context.Background(), p, mapping.NewMapper([]*mapping.Rule{rule}, nil, logger), 0, logger)

	blob := strings.Repeat("b", 64<<10)
	var frames [][]byte
	// cells lays vals out in one frame, as the decoder leaves them.
	cells := func(vals ...string) []replicator.Cell {
		frame := []byte(strings.Join(vals, ""))
		frames = append(frames, frame)
		out := make([]replicator.Cell, len(vals))
		at := 0
		for i, v := range vals {
			out[i] = replicator.Cell{State: replicator.CellText, Data: frame[at : at+len(v) : at+len(v)]}
			at += len(v)
		}
		return out
	}
	handle := func(m *replicator.Message) {
		require.NoError(t, sink.Handle(m))
		for _, f := range frames {
			for i := range f {
				f[i] = 'Z'
			}
		}
	}
	handle(&replicator.Message{Kind: replicator.MessageBegin, LSN: 10})
	handle(&replicator.Message{Kind: replicator.MessageRelation, Relation: rel})
	for _, id := range []string{"1", "2", "3"} {
		handle(&replicator.Message{Kind: replicator.MessageInsert, RelationID: 1, New: cells(id, blob, "body "+id)})
	}
	handle(&replicator.Message{Kind: replicator.MessageUpdate, RelationID: 1, Old: cells("2", blob, "body 2"), New: cells("2", blob, "new 2")})
	handle(&replicator.Message{Kind: replicator.MessageDelete, RelationID: 1, Old: cells("3", blob, "body 3")})
	handle(&replicator.Message{Kind: replicator.MessageCommit, LSN: 10, EndLSN: 11})
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, sink.Drain(ctx))
	require.Equal(t, map[string]memory.Row{
		"1": {"id": "1", "body": `"body 1"`},
		"2": {"id": "2", "body": `"new 2"`},
	}, w.Rows("t"))
}
