package pipeline

import (
	"context"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/mapping"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/targets/memory"
)

// BenchmarkStreamRow measures the reader's cost per streamed row, from a
// decoded Insert message to a confirmed batch in the discarding in-memory
// target: map, coalesce, hand off, confirm. (replication's BenchmarkDecode
// measures the decoding.)
func BenchmarkStreamRow(b *testing.B) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rule := &mapping.Rule{Source: "public.items", Target: "mem", Table: "items", Key: []string{"id"}, AllColumns: true, OnDelete: mapping.DeleteRow}
	oids := []uint32{20, 25, 23, 1700, 3802, 1184, 16}
	names := []string{"id", "name", "qty", "price", "doc", "at", "flag"}
	for _, n := range names {
		rule.Columns = append(rule.Columns, mapping.ColumnRule{Source: n, Target: n})
	}
	w := memory.New()
	w.Discard = true
	if err := w.Prepare(context.Background(), []replicator.TableSpec{rule.Spec()}); err != nil {
		b.Fatal(err)
	}
	p := New([]Route{{Rule: rule, Target: "mem", Writer: w}}, nil, monitor.New(prometheus.NewRegistry()),
		Options{MaxInFlightBytes: 64 << 20, FlushInterval: time.Second, BatchRows: 500, BatchBytes: 4 << 20, TickInterval: time.Second}, logger)
	defer p.Close()
	mapper := mapping.NewMapper([]*mapping.Rule{rule}, nil, logger)
	sink := NewStreamSink(context.Background(), p, mapper, 0, logger)

	rel := &replicator.Relation{ID: 1, Namespace: "public", Name: "items", ReplicaIdentity: 'd'}
	for i, n := range names {
		rel.Columns = append(rel.Columns, replicator.Column{Name: n, TypeOID: oids[i], TypMod: -1, Key: i == 0})
	}
	handle := func(m *replicator.Message) {
		if err := sink.Handle(m); err != nil {
			b.Fatal(err)
		}
	}
	handle(&replicator.Message{Kind: replicator.MessageBegin})
	handle(&replicator.Message{Kind: replicator.MessageRelation, Relation: rel})
	insert := &replicator.Message{Kind: replicator.MessageInsert, RelationID: 1, New: make([]replicator.Cell, len(names))}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// As the stream does, each message's cells point into a buffer of
		// its own (the received frame).
		var buf []byte
		var ends [8]int
		for j, v := range []string{strconv.Itoa(i), "name " + strconv.Itoa(i), "7", "12.50", `{"g": 1}`, "2024-01-02 03:04:05.123456+00", "t"} {
			buf = append(buf, v...)
			ends[j+1] = len(buf)
		}
		for j := range insert.New {
			insert.New[j] = replicator.Cell{State: replicator.CellText, Data: buf[ends[j]:ends[j+1]:ends[j+1]]}
		}
		handle(insert)
	}
	handle(&replicator.Message{Kind: replicator.MessageCommit, LSN: 1, EndLSN: 2})
	if err := sink.Drain(context.Background()); err != nil {
		b.Fatal(err)
	}
}
