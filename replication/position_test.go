package replication

import (
	"context"
	"testing"

	"github.com/jackc/pglogrepl"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/internal/pgtest"
)

// A change visible to another session is at or before VisiblePosition,
// even under synchronous_commit = off, where a commit is visible before
// the WAL writer has written it. Comparing against pg_current_wal_lsn()
// instead fails here most runs: verify then waited for a position before
// the change and called the not-yet-mirrored row drift.
func TestVisiblePositionCoversAsynchronousCommits(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{Settings: map[string]string{"wal_writer_delay": "10000ms"}})
	ctx := context.Background()
	dsn := c.NewDatabase(t)
	writer, err := ConnectSQL(ctx, dsn)
	require.NoError(t, err)
	defer writer.Close(context.Background())
	reader, err := ConnectSQL(ctx, dsn)
	require.NoError(t, err)
	defer reader.Close(context.Background())
	_, err = reader.Exec(ctx, "SET synchronous_commit = on")
	require.NoError(t, err)
	for _, sql := range []string{
		"CREATE TABLE t (id int)",
		"CREATE TABLE flush (id int)",
		"SELECT pg_create_logical_replication_slot('visible', 'test_decoding')",
		"SET synchronous_commit = off",
	} {
		_, err = writer.Exec(ctx, sql)
		require.NoError(t, err)
	}

	for i := range 5 {
		_, err = writer.Exec(ctx, "INSERT INTO t VALUES ($1)", i)
		require.NoError(t, err)
		var seen int
		require.NoError(t, reader.QueryRow(ctx, "SELECT count(*) FROM t WHERE id = $1", i).Scan(&seen))
		require.Equal(t, 1, seen)
		pos, err := VisiblePosition(ctx, reader)
		require.NoError(t, err)

		// A synchronous commit flushes the WAL before it, so the
		// decoding below sees the insert's commit.
		_, err = reader.Exec(ctx, "INSERT INTO flush VALUES (1)")
		require.NoError(t, err)
		var commitEnd string
		require.NoError(t, reader.QueryRow(ctx, `SELECT lsn::text FROM pg_logical_slot_get_changes('visible', NULL, NULL)
			WHERE data LIKE 'COMMIT%' ORDER BY lsn LIMIT 1`).Scan(&commitEnd))
		visible, err := pglogrepl.ParseLSN(pos)
		require.NoError(t, err)
		commit, err := pglogrepl.ParseLSN(commitEnd)
		require.NoError(t, err)
		require.GreaterOrEqual(t, visible, commit, "round %d: the insert committed at %s, after the position %s", i, commit, visible)
	}
}
