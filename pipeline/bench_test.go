package pipeline

import (
	"context"
	"encoding/binary"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/mapping"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/replication"
	"github.com/replicator-cdc/replicator/targets/memory"
)

// BenchmarkStreamRow measures the reader's cost per streamed row, from a
// pgoutput Insert message to a confirmed batch in the discarding in-memory
// target: decode, map, coalesce, hand off, confirm.
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
	tick := func() error { return nil }

	rel := []byte{'R'}
	rel = binary.BigEndian.AppendUint32(rel, 1)
	rel = append(rel, "public\x00items\x00d"...)
	rel = binary.BigEndian.AppendUint16(rel, uint16(len(names)))
	for i, n := range names {
		flag := byte(0)
		if i == 0 {
			flag = 1
		}
		rel = append(append(append(rel, flag), n...), 0)
		rel = binary.BigEndian.AppendUint32(rel, oids[i])
		rel = binary.BigEndian.AppendUint32(rel, 0xFFFFFFFF)
	}
	var msg replication.Message
	handle := func(data []byte) {
		if err := replication.Decode(data, &msg); err != nil {
			b.Fatal(err)
		}
		if err := sink.Handle(&msg, tick); err != nil {
			b.Fatal(err)
		}
	}
	handle(append([]byte{'B'}, make([]byte, 20)...))
	handle(rel)
	insert := func(id int) []byte {
		m := []byte{'I'}
		m = binary.BigEndian.AppendUint32(m, 1)
		m = append(m, 'N')
		m = binary.BigEndian.AppendUint16(m, uint16(len(names)))
		for _, v := range []string{strconv.Itoa(id), "name " + strconv.Itoa(id), "7", "12.50", `{"g": 1}`, "2024-01-02 03:04:05.123456+00", "t"} {
			m = append(m, 't')
			m = binary.BigEndian.AppendUint32(m, uint32(len(v)))
			m = append(m, v...)
		}
		return m
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// The stream copies each message out of the receive buffer.
		handle(append([]byte(nil), insert(i)...))
	}
	commit := []byte{'C', 0}
	commit = binary.BigEndian.AppendUint64(commit, 1)
	commit = binary.BigEndian.AppendUint64(commit, 2)
	commit = binary.BigEndian.AppendUint64(commit, 0)
	handle(commit)
	if err := sink.Drain(context.Background(), tick); err != nil {
		b.Fatal(err)
	}
}
