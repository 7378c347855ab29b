package mapping_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/internal/typesdoc"
	"github.com/replicator-cdc/replicator/mapping"
)

// TestTypesDocMatchesEncoder keeps docs/types.md true: every row's sample,
// read from PostgreSQL in the form pgoutput sends, encodes to exactly the
// JSON the row says Feishu receives. The GPTBots column is checked in
// package gptbots.
func TestTypesDocMatchesEncoder(t *testing.T) {
	samples, types := typesdoc.Open(t, "../docs/types.md")
	kinds := map[string]bool{}
	for _, s := range samples {
		kinds[s.Type] = true
	}
	require.GreaterOrEqual(t, len(kinds), 50, "the table covers at least 50 types")
	for _, s := range samples {
		v, err := mapping.EncodeAs(types, s.OID, "", string(s.Text))
		require.NoError(t, err, "line %d: %s", s.Line, s.Text)
		got := string(replicator.AppendJSON(nil, v))
		require.Equal(t, s.Feishu, got, "docs/types.md line %d (%s %s, PostgreSQL text %q)", s.Line, s.Type, s.Sample, s.Text)
	}
}
