package replication

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// VisiblePosition returns a WAL position at or after the commit of every
// transaction the caller's snapshot (or, outside a transaction, the next
// statement) can see: once a slot has confirmed it, the stream has
// delivered all of them. It is the insert position, not
// pg_current_wal_lsn(): under synchronous_commit = off a commit is visible
// as soon as its record is inserted, before the WAL writer writes it, so
// the write position can lie behind a change already visible.
func VisiblePosition(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}) (string, error) {
	var lsn string
	if err := q.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		return "", fmt.Errorf("read the WAL position: %w", err)
	}
	return lsn, nil
}
