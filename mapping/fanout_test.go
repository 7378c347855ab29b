package mapping

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
)

// Every mapping of a relation gets the change; a record one mapping
// refuses (its key cannot be encoded) comes back as a RowError while the
// other mapping's record is still emitted.
func TestChangeFansOutAndCollectsRefusals(t *testing.T) {
	byID := &Rule{Source: "public.ev", Target: "lark", Table: "ev", Key: []string{"id"}, OnDelete: DeleteRow,
		Columns: []ColumnRule{{Source: "id", Target: "id"}, {Source: "name", Target: "name"}}}
	byAt := &Rule{Source: "public.ev", Target: "bots", Table: "ev_at", Key: []string{"at"}, OnDelete: DeleteRow,
		Columns: []ColumnRule{{Source: "at", Target: "at_ms", Format: FormatUnixMS}}}
	m := NewMapper([]*Rule{byID, byAt}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	rel := &replicator.Relation{ID: 7, Namespace: "public", Name: "ev", Columns: []replicator.Column{
		{Name: "id", TypeOID: pgtype.Int4OID}, {Name: "at", TypeOID: pgtype.TimestamptzOID}, {Name: "name", TypeOID: pgtype.TextOID}}}
	ctx := context.Background()
	require.NoError(t, m.Relation(ctx, rel))
	ts, err := m.Tables(7)
	require.NoError(t, err)
	require.Len(t, ts, 2)

	var got []string
	emit := func(tbl *Table, rec replicator.Record) error {
		got = append(got, tbl.Rule.Table+":"+string(rec.Key[0].Value.Raw))
		return nil
	}
	msg := &replicator.Message{Kind: replicator.MessageInsert, RelationID: 7, New: cells("1", "2024-01-01 00:00:00+00", "one")}
	require.NoError(t, m.Change(ctx, msg, 10, emit))
	require.Equal(t, []string{"ev:1", "ev_at:1704067200000"}, got)

	got = nil
	msg = &replicator.Message{Kind: replicator.MessageInsert, RelationID: 7, New: cells("2", "infinity", "two")}
	err = m.Change(ctx, msg, 11, emit)
	require.Equal(t, []string{"ev:2"}, got, "the other mapping's record is emitted")
	rows := RowErrors(err)
	require.Len(t, rows, 1)
	require.Equal(t, "ev_at", rows[0].Table.Rule.Table)
}
