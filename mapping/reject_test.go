package mapping

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
)

func stampTable(t *testing.T, key string) *Table {
	t.Helper()
	rule := &Rule{Source: "public.ev", Target: "mem", Table: "ev", Key: []string{key}, OnDelete: DeleteRow,
		Columns: []ColumnRule{{Source: "id", Target: "id"}, {Source: "at", Target: "at_ms", Format: FormatUnixMS}, {Source: "name", Target: "name"}}}
	rel := &replicator.Relation{Namespace: "public", Name: "ev", Columns: []replicator.Column{
		{Name: "id", TypeOID: pgtype.Int4OID}, {Name: "at", TypeOID: pgtype.TimestamptzOID}, {Name: "name", TypeOID: pgtype.TextOID}}}
	tbl, err := Compile(rule, rel, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	return tbl
}

func cells(vals ...string) []replicator.Cell {
	out := make([]replicator.Cell, len(vals))
	for i, v := range vals {
		out[i] = replicator.Cell{State: replicator.CellText, Data: []byte(v)}
	}
	return out
}

// A value that cannot be encoded leaves the record without that column and
// lists it in Rejected; the record is not an error.
func TestUpsertLeavesOutUnencodableValue(t *testing.T) {
	tbl := stampTable(t, "id")
	rec, err := tbl.Upsert(cells("7", "infinity", "seven"), 42)
	require.NoError(t, err)
	require.Equal(t, replicator.OpUpsert, rec.Op)
	require.Equal(t, "7", string(rec.Key[0].Value.Raw))
	_, has := rec.Field("at_ms")
	require.False(t, has, "the refused value must be left out, not written as null")
	name, _ := rec.Field("name")
	require.Equal(t, "seven", string(name.Raw))
	require.Len(t, rec.Rejected, 1)
	r := rec.Rejected[0]
	require.Equal(t, "at_ms", r.Column)
	require.Equal(t, "infinity", string(r.Value))
	require.Contains(t, r.Reason, "column at:")

	rec, err = tbl.Upsert(cells("8", "2024-01-01 00:00:00+00", "eight"), 43)
	require.NoError(t, err)
	require.Empty(t, rec.Rejected)
	at, _ := rec.Field("at_ms")
	require.Equal(t, "1704067200000", string(at.Raw))
}

// A key value that cannot be encoded rejects the record as a whole with a
// RowError that carries what the record was to do, never a plain error.
func TestUnencodableKeyIsRowError(t *testing.T) {
	tbl := stampTable(t, "at")
	_, err := tbl.Upsert(cells("7", "-infinity", "seven"), 42)
	var row *RowError
	require.True(t, errors.As(err, &row), "got %v", err)
	require.Same(t, tbl, row.Table)
	require.Equal(t, replicator.OpUpsert, row.Rejection.Record.Op)
	require.Equal(t, replicator.LSN(42), row.Rejection.Record.LSN)
	require.Equal(t, "at_ms", row.Rejection.Record.Key[0].Name)
	require.Equal(t, "-infinity", string(row.Rejection.Record.Key[0].Value.Raw))
	require.Empty(t, row.Rejection.Column, "the record is refused whole")
	require.Contains(t, row.Rejection.Reason, "key column at")

	_, _, err = tbl.Delete(cells("7", "infinity", "seven"), 43)
	require.True(t, errors.As(err, &row), "got %v", err)
	require.Equal(t, replicator.OpDelete, row.Rejection.Record.Op)
	require.Equal(t, replicator.LSN(43), row.Rejection.Record.LSN)
}

// An update moving a row away from a key that cannot be encoded still
// writes the new row; the delete of the old key comes back as a RowError
// after it, to be dead-lettered.
func TestKeyChangeFromUnencodableKey(t *testing.T) {
	tbl := stampTable(t, "at")
	rel := *tbl.Relation()
	rel.ID = 5
	m := NewMapper([]*Rule{tbl.Rule}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, m.Relation(context.Background(), &rel))
	var emitted []replicator.Record
	err := m.Change(t.Context(), &replicator.Message{
		Kind: replicator.MessageUpdate, RelationID: 5,
		Old: cells("7", "infinity", "seven"), New: cells("7", "2024-01-01 00:00:00+00", "seven"),
	}, 99, func(_ *Table, rec replicator.Record) error {
		emitted = append(emitted, rec)
		return nil
	})
	require.Len(t, emitted, 1)
	require.Equal(t, replicator.OpUpsert, emitted[0].Op)
	require.Equal(t, "1704067200000", string(emitted[0].Key[0].Value.Raw))
	var row *RowError
	require.True(t, errors.As(err, &row), "got %v", err)
	require.Equal(t, replicator.OpDelete, row.Rejection.Record.Op)
	require.Equal(t, "infinity", string(row.Rejection.Record.Key[0].Value.Raw))
}
