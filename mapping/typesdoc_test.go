package mapping_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/internal/pgtest"
	"github.com/replicator-cdc/replicator/internal/typesdoc"
	"github.com/replicator-cdc/replicator/mapping"
	"github.com/replicator-cdc/replicator/replication"
)

// TestTypesDocMatchesEncoder keeps docs/types.md true: every row's sample,
// read from PostgreSQL in the form pgoutput sends, encodes to exactly the
// JSON the row says Feishu receives. The GPTBots column is checked in
// package gptbots.
func TestTypesDocMatchesEncoder(t *testing.T) {
	rows, err := typesdoc.Read("../docs/types.md")
	require.NoError(t, err)
	kinds := map[string]bool{}
	for _, r := range rows {
		kinds[r.Type] = true
	}
	require.GreaterOrEqual(t, len(kinds), 50, "the table covers at least 50 types")

	c := pgtest.Start(t)
	ctx := context.Background()
	conn, err := replication.ConnectSQL(ctx, c.NewDatabase(t))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, typesdoc.Types)
	require.NoError(t, err)
	types := &replication.TypeCatalog{Conn: conn}
	for _, r := range rows {
		text, oid, err := typesdoc.Source(ctx, conn, r)
		require.NoError(t, err)
		v, err := mapping.EncodeAs(types, oid, "", string(text))
		require.NoError(t, err, "line %d: %s", r.Line, text)
		got := string(replicator.AppendJSON(nil, v))
		require.Equal(t, r.Feishu, got, "docs/types.md line %d (%s %s, PostgreSQL text %q)", r.Line, r.Type, r.Sample, text)
	}
}
