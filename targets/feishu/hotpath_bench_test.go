package feishu

import (
	"fmt"
	"slices"
	"testing"

	"github.com/replicator-cdc/replicator"
)

func BenchmarkPlan(b *testing.B) {
	var recs []replicator.Record
	for i := range 500 {
		recs = append(recs, upsertRec(idField(i), field("name", val(replicator.KindText, "n")), field("note", val(replicator.KindText, "x"))))
	}
	batch := replicator.Batch{Table: customers, Records: recs}
	b.ReportAllocs()
	for b.Loop() {
		plan(&batch, 500, 4000)
	}
}

func BenchmarkStripRefused(b *testing.B) {
	cols := map[string]column{}
	var fields []replicator.Field
	for i, typ := range []string{"bigint", "text", "integer", "numeric", "text", "jsonb", "timestamptz"} {
		name := fmt.Sprintf("c%d", i)
		cols[name] = column{Name: name, DataType: typ, IsAllowNull: true, IsArray: i == 4}
		fields = append(fields, field(name, val(replicator.KindText, "1")))
	}
	fields[0].Value.Kind, fields[2].Value.Kind, fields[3].Value.Kind = replicator.KindInt, replicator.KindInt, replicator.KindNumeric
	fields[6].Value = val(replicator.KindTimestampTZ, "2024-01-02T03:04:05.123+00:00")
	recs := make([]replicator.Record, 500)
	for i := range recs {
		recs[i] = upsertRec(slices.Clone(fields)...)
	}
	batch := replicator.Batch{Table: replicator.TableSpec{Table: "t", Key: []string{"c0"}}, Records: recs}
	b.ReportAllocs()
	for b.Loop() {
		stripRefused(&batch, cols)
	}
}
