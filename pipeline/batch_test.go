package pipeline

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
)

func text(s string) replicator.Value {
	return replicator.Value{Kind: replicator.KindText, Raw: []byte(s)}
}

func upsert(id string, fields ...replicator.Field) replicator.Record {
	key := []replicator.Field{{Name: "id", Value: replicator.Value{Kind: replicator.KindInt, Raw: []byte(id)}}}
	return replicator.Record{Op: replicator.OpUpsert, Key: key, Fields: append(append([]replicator.Field(nil), key...), fields...)}
}

func del(id string) replicator.Record {
	return replicator.Record{Op: replicator.OpDelete, Key: []replicator.Field{{Name: "id", Value: replicator.Value{Kind: replicator.KindInt, Raw: []byte(id)}}}}
}

// Invariant 2: a batch keeps the latest state of each key.
func TestBatchCoalescesByKey(t *testing.T) {
	tr := NewTracker(0)
	id := tr.Begin(time.Time{})
	tests := []struct {
		name string
		in   []replicator.Record
		want []replicator.Record
	}{
		{"later upsert wins", []replicator.Record{upsert("1", replicator.Field{Name: "a", Value: text("x")}), upsert("1", replicator.Field{Name: "a", Value: text("y")})},
			[]replicator.Record{upsert("1", replicator.Field{Name: "a", Value: text("y")})}},
		{"unchanged column keeps the earlier value", []replicator.Record{
			upsert("1", replicator.Field{Name: "a", Value: text("x")}, replicator.Field{Name: "big", Value: text("toast")}),
			upsert("1", replicator.Field{Name: "a", Value: text("y")})},
			[]replicator.Record{upsert("1", replicator.Field{Name: "a", Value: text("y")}, replicator.Field{Name: "big", Value: text("toast")})}},
		{"delete after insert leaves a delete", []replicator.Record{upsert("1"), del("1")}, []replicator.Record{del("1")}},
		{"insert after delete leaves an upsert", []replicator.Record{del("1"), upsert("1", replicator.Field{Name: "a", Value: text("z")})},
			[]replicator.Record{upsert("1", replicator.Field{Name: "a", Value: text("z")})}},
		{"distinct keys keep their order", []replicator.Record{upsert("2"), del("1"), upsert("3")}, []replicator.Record{upsert("2"), del("1"), upsert("3")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBatch(0)
			for _, r := range tt.in {
				b.add(r, 1, tr, id)
			}
			require.Equal(t, tt.want, b.records)
			require.Equal(t, []unitCount{{tracker: tr, id: id, n: len(tt.in)}}, b.units, "coalesced records still count toward their transaction")
		})
	}
}

// A batch that outgrows its first records grows to all its rows at once.
func TestBatchGrowsToItsRowsOnce(t *testing.T) {
	tr := NewTracker(0)
	id := tr.Begin(time.Time{})
	b := newBatch(500)
	for i := range 65 {
		b.add(upsert(strconv.Itoa(i)), 1, tr, id)
	}
	grown := cap(b.records)
	require.GreaterOrEqual(t, grown, 500)
	require.Less(t, grown, 2*500)
	for i := range 500 {
		b.add(upsert(strconv.Itoa(i)), 1, tr, id)
	}
	require.Len(t, b.records, 500)
	require.Equal(t, grown, cap(b.records), "grown once")
	for i, r := range b.records {
		require.Equal(t, i, b.index[r.KeyString()])
	}
}

func BenchmarkBatchFill(b *testing.B) {
	tr := NewTracker(0)
	id := tr.Begin(time.Time{})
	recs := make([]replicator.Record, 500)
	for i := range recs {
		recs[i] = upsert(strconv.Itoa(i), replicator.Field{Name: "a", Value: text("x")})
	}
	b.ReportAllocs()
	for b.Loop() {
		batch := newBatch(500)
		for _, r := range recs {
			batch.add(r, 1, tr, id)
		}
	}
}
