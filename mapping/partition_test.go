package mapping

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
)

// Relations the stream names that no rule names: a partition of a mapped
// table follows that table's rule (the topmost mapped ancestor), a lookup
// failure is an error naming the relation, anything else is logged once.
func TestRelationResolvesPartitions(t *testing.T) {
	root := &Rule{Source: "public.items", Table: "items", Key: []string{"id"}, AllColumns: true}
	sub := &Rule{Source: "public.items_2024", Table: "items_2024", Key: []string{"id"}, AllColumns: true}
	ancestors := map[uint32][]string{
		10: {"public.items"},
		11: {"public.items_2024", "public.items"},
		12: {"public.other_root"},
		13: {},
	}
	var logs bytes.Buffer
	m := NewMapper([]*Rule{root, sub}, nil, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	m.ResolvePartitions(func(_ context.Context, id uint32) ([]string, bool, error) {
		if id == 99 {
			return nil, false, errors.New("connection lost")
		}
		a, ok := ancestors[id]
		return a, ok, nil
	})
	rel := func(id uint32, name string) *replicator.Relation {
		return &replicator.Relation{ID: id, Namespace: "public", Name: name, ReplicaIdentity: 'd',
			Columns: []replicator.Column{{Name: "name", TypeOID: 25}, {Name: "id", TypeOID: 20, Key: true}}}
	}
	tests := []struct {
		id       uint32
		name     string
		wantRule *Rule
		wantErr  string
	}{
		{10, "items_p1", root, ""},
		{11, "items_2024_q1", root, ""},
		{12, "unrelated_part", nil, ""},
		{13, "plain", nil, ""},
		{14, "dropped", nil, ""},
		{99, "unknowable", nil, "public.unknowable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 {
				err := m.Relation(context.Background(), rel(tc.id, tc.name))
				if tc.wantErr != "" {
					require.ErrorContains(t, err, tc.wantErr)
					return
				}
				require.NoError(t, err)
				tab, err := m.Table(tc.id)
				require.NoError(t, err)
				if tc.wantRule == nil {
					require.Nil(t, tab)
					continue
				}
				require.Same(t, tc.wantRule, tab.Rule)
				rec, err := tab.Upsert([]replicator.Cell{{State: replicator.CellText, Data: []byte("n")}, {State: replicator.CellText, Data: []byte("7")}}, 1)
				require.NoError(t, err)
				require.Equal(t, "7", string(rec.Key[0].Value.Raw), "columns are matched by name, whatever the partition's order")
			}
		})
	}
	for _, name := range []string{"items_p1", "plain", "dropped", "unrelated_part"} {
		require.Equal(t, 1, strings.Count(logs.String(), "public."+name), "logged once: %s\n%s", name, logs.String())
	}
}
