package replication

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/internal/pgtest"
)

// A copy reads only the columns the mapping keeps: the others come as NULL
// cells in their places, so that a chunk of wide rows holds none of what
// is left out.
func TestSnapshotReadsOnlyTheColumnsAsked(t *testing.T) {
	c := pgtest.Start(t)
	ctx := context.Background()
	conn, err := ConnectSQL(ctx, c.NewDatabase(t))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, `CREATE TABLE wide (id bigint, blob text, name text);
		INSERT INTO wide VALUES (1, repeat('b', 100000), 'one'), (NULL, repeat('b', 100000), 'none')`)
	require.NoError(t, err)
	info, err := LoadTable(ctx, conn, "public.wide")
	require.NoError(t, err)
	skipBlob := func(i int) bool { return info.Columns[i].Name != "blob" }
	text := func(s string) replicator.Cell { return replicator.Cell{State: replicator.CellText, Data: []byte(s)} }
	null := replicator.Cell{State: replicator.CellNull}

	rows, err := ReadChunk(ctx, conn, info, []string{"id"}, nil, 10, skipBlob)
	require.NoError(t, err)
	require.Equal(t, [][]replicator.Cell{{text("1"), null, text("one")}}, rows)
	rows, _, err = ReadNullKeys(ctx, conn, info, []string{"id"}, "", 10, skipBlob)
	require.NoError(t, err)
	require.Equal(t, [][]replicator.Cell{{null, null, text("none")}}, rows)
}
