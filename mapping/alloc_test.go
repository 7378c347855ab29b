package mapping

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
)

// A row of the common types costs the same two allocations however many
// columns it has (its fields, and one buffer for the values whose form
// changes: timestamptz, arrays); the other values keep the source's text.
func TestUpsertAllocatesPerRowNotPerValue(t *testing.T) {
	oids := []uint32{20, 23, 25, 1700, 16, 1184, 3802, 1009, 1184, 1009}
	values := []string{"9007199254740993", "42", "some text", "12345.678901234567890", "t", "2024-01-02 03:04:05.123456+08",
		`{"a": [1, 2]}`, `{a,"b c",NULL}`, "1999-12-31 23:59:59+00", `{x}`}
	rel := &replicator.Relation{ID: 1, Namespace: "public", Name: "t"}
	rule := &Rule{Source: "public.t", Target: "x", Table: "t", Key: []string{"c0"}, OnDelete: DeleteRow}
	cells := make([]replicator.Cell, len(oids))
	for i, oid := range oids {
		name := "c" + string(rune('0'+i))
		rel.Columns = append(rel.Columns, replicator.Column{Name: name, TypeOID: oid, Key: i == 0})
		rule.Columns = append(rule.Columns, ColumnRule{Source: name, Target: name})
		cells[i] = replicator.Cell{State: replicator.CellText, Data: []byte(values[i])}
	}
	tbl, err := Compile(rule, rel, nil, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	rec, err := tbl.Upsert(cells, 1)
	require.NoError(t, err)
	require.Empty(t, rec.Rejected)
	require.Equal(t, "2024-01-02T03:04:05.123456+08:00", string(rec.Fields[5].Value.Raw))
	require.Equal(t, `["a","b c",null]`, string(rec.Fields[7].Value.Raw))
	require.Equal(t, "1999-12-31T23:59:59+00:00", string(rec.Fields[8].Value.Raw))
	require.Equal(t, `["x"]`, string(rec.Fields[9].Value.Raw))
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := tbl.Upsert(cells, 1); err != nil {
			t.Fatal(err)
		}
	})
	require.LessOrEqual(t, allocs, 2.0)
}
