package mapping

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
)

func testRelation(identity byte, cols ...string) *replicator.Relation {
	rel := &replicator.Relation{ID: 1, Namespace: "public", Name: "t", ReplicaIdentity: identity}
	for i, c := range cols {
		rel.Columns = append(rel.Columns, replicator.Column{Name: c, TypeOID: pgtype.TextOID, Key: i == 0 || identity == 'f'})
	}
	return rel
}

func text(s string) replicator.Cell {
	return replicator.Cell{State: replicator.CellText, Data: []byte(s)}
}

var null = replicator.Cell{State: replicator.CellNull}

func TestCompileColumnPolicies(t *testing.T) {
	listed := []ColumnRule{{Source: "id", Target: "id"}, {Source: "a", Target: "a"}, {Source: "b", Target: "b"}}
	tests := []struct {
		name     string
		rule     Rule
		rel      *replicator.Relation
		wantErr  string
		wantCols map[string]string // source column → target, for the mapped ones
		leftOut  []string
	}{
		{
			name:    "listed column gone halts by default",
			rule:    Rule{Columns: listed},
			rel:     testRelation('d', "id", "a"),
			wantErr: "mapping public.t: column b (written to target column b) is not in the source table",
		},
		{
			name:     "listed column gone is left out under skip",
			rule:     Rule{Columns: listed, OnMissingColumn: MissingSkip},
			rel:      testRelation('d', "id", "a"),
			wantCols: map[string]string{"id": "id", "a": "a"},
		},
		{
			name:     "copy-every-column rule follows the relation",
			rule:     Rule{Columns: listed, AllColumns: true},
			rel:      testRelation('d', "id", "a", "c"),
			wantCols: map[string]string{"id": "id", "a": "a", "c": "c"},
		},
		{
			name:     "copy-every-column rule leaves out what the target lacks",
			rule:     Rule{Columns: listed, AllColumns: true, TargetColumns: map[string]bool{"id": true, "a": true, "b": true}},
			rel:      testRelation('d', "id", "a", "b", "c"),
			wantCols: map[string]string{"id": "id", "a": "a", "b": "b"},
			leftOut:  []string{"c"},
		},
		{
			name:    "key column gone is an error whatever the policy",
			rule:    Rule{Columns: listed, OnMissingColumn: MissingSkip},
			rel:     testRelation('d', "a", "b"),
			wantErr: "key column id is not in the source table",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule := tt.rule
			rule.Source, rule.Table, rule.Key, rule.OnDelete = "public.t", "t", []string{"id"}, DeleteRow
			tbl, err := Compile(&rule, tt.rel, nil, slog.New(slog.DiscardHandler))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			got := map[string]string{}
			for i, f := range tbl.fields {
				if f.target != "" {
					got[tt.rel.Columns[i].Name] = f.target
				}
			}
			require.Equal(t, tt.wantCols, got)
			require.Equal(t, tt.leftOut, tbl.LeftOut)
		})
	}
}

// A NULL key is a rejection of that record, reported with the record; a
// key the old tuple did not send (outside the replica identity) is not a
// NULL key but a configuration error.
func TestNullKeyIsARecordRejection(t *testing.T) {
	rule := &Rule{Source: "public.t", Table: "t", Key: []string{"code"}, Columns: []ColumnRule{{Source: "id", Target: "id"}, {Source: "code", Target: "code"}}, OnDelete: DeleteRow}
	rel := testRelation('d', "id", "code")
	var emitted []replicator.Record
	m := NewMapper([]*Rule{rule}, nil, slog.New(slog.DiscardHandler))
	require.NoError(t, m.Relation(context.Background(), rel))
	emit := func(_ *Table, rec replicator.Record) error { emitted = append(emitted, rec); return nil }

	insert := &replicator.Message{Kind: replicator.MessageInsert, RelationID: 1, New: []replicator.Cell{text("1"), null}}
	err := m.Change(context.Background(), insert, 7, emit)
	var row *RowError
	require.True(t, errors.As(err, &row), "%v", err)
	require.Empty(t, emitted)
	require.Equal(t, "key column code is NULL; the target cannot address this row", row.Rejection.Reason)
	rec := row.Rejection.Record
	require.Equal(t, replicator.OpUpsert, rec.Op)
	require.True(t, rec.Key[0].Value.IsNull())
	require.Equal(t, replicator.LSN(7), rec.LSN)
	require.Equal(t, `"1"`, string(replicator.AppendJSON(nil, rec.Fields[0].Value)), "the dead letter keeps the row")

	insert.New = []replicator.Cell{text("2"), text("x")}
	require.NoError(t, m.Change(context.Background(), insert, 8, emit))
	require.Len(t, emitted, 1)

	// code is not in the default replica identity: a delete's old tuple
	// sends it as NULL because it was not sent at all.
	del := &replicator.Message{Kind: replicator.MessageDelete, RelationID: 1, Old: []replicator.Cell{text("2"), null}}
	err = m.Change(context.Background(), del, 9, emit)
	require.ErrorIs(t, err, errKeyUnavailable)
	require.False(t, errors.As(err, &row))
}

func TestMissingColumnIsTyped(t *testing.T) {
	rule := &Rule{Source: "public.t", Table: "t", Key: []string{"id"}, Columns: []ColumnRule{{Source: "id", Target: "id"}, {Source: "gone", Target: "g"}}}
	_, err := Compile(rule, testRelation('d', "id"), nil, slog.New(slog.DiscardHandler))
	var missing *MissingColumn
	require.True(t, errors.As(err, &missing))
	require.Equal(t, MissingColumn{Source: "public.t", Column: "gone", Target: "g"}, *missing)
}
