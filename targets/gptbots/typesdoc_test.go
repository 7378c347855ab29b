package gptbots

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/internal/typesdoc"
	"github.com/replicator-cdc/replicator/mapping"
)

// TestTypesDocMatchesGPTBots keeps the GPTBots column of docs/types.md
// true: every row's sample, mapped the way the daemon maps a column, is
// written to a field of the documented type as exactly the documented JSON.
// A row saying only TEXT means the value's text as a JSON string: Feishu's
// string itself, or Feishu's JSON document as a string.
func TestTypesDocMatchesGPTBots(t *testing.T) {
	samples, types := typesdoc.Open(t, "../../docs/types.md")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rule := &mapping.Rule{Source: "public.t", Columns: []mapping.ColumnRule{{Source: "v", Target: "v"}}}
	for _, r := range samples {
		rel := &replicator.Relation{Namespace: "public", Name: "t", Columns: []replicator.Column{{Name: "v", TypeOID: r.OID}}}
		tbl, err := mapping.Compile(rule, rel, types, logger)
		require.NoError(t, err)
		rec, err := tbl.Upsert([]replicator.Cell{{State: replicator.CellText, Data: r.Text}}, 0)
		require.NoError(t, err, "line %d", r.Line)
		want := r.GPTBots
		if want == "" {
			require.Equal(t, typeText, r.Field, "line %d: only TEXT may leave the value out", r.Line)
			want = r.Feishu
			if want[0] != '"' {
				want = string(replicator.AppendJSONString(nil, []byte(r.Feishu)))
			}
		}
		got, err := encodeValue(nil, rec.Fields[0].Value, r.Field, time.UTC)
		require.NoError(t, err, "docs/types.md line %d: %s %s into %s", r.Line, r.Type, r.Sample, r.Field)
		require.Equal(t, want, string(got), "docs/types.md line %d (%s %s into %s)", r.Line, r.Type, r.Sample, r.Field)
	}
}
