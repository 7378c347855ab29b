// Package e2e drives the whole daemon against a real PostgreSQL and the
// fake targets: the in-process app.Run and the built binary, under
// injected faults, restarts and SIGKILL. One harness serves every target:
// a scenario runs once per target (t.Run per target) through a small
// adapter (target_test.go) that starts the target's fake, reads its rows
// back and injects its faults.
package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/internal/pgtest"
	"github.com/replicator-cdc/replicator/internal/testkit"
)

// cluster is shared by every test of the package: starting PostgreSQL
// costs seconds, a database of one's own costs milliseconds.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) { pgtest.Main(m, func(c *pgtest.Cluster) { cluster = c }) }

// database is one test's source database.
type database struct {
	dsn string
	// name is unique in the cluster, and so also names the slot and the
	// publication: slots are per cluster, not per database.
	name string
	db   *pgx.Conn
}

// newDatabase creates the test's database with the items table. Its
// TimeZone (zone) and DateStyle are ones a user of the target might well
// have, and it renders doubles rounded: the daemon must not depend on any
// of them, because it fixes its own session settings.
func newDatabase(t *testing.T, zone string) database {
	t.Helper()
	ctx := context.Background()
	dsn := cluster.NewDatabase(t)
	db, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close(context.Background()) })
	var name string
	require.NoError(t, db.QueryRow(ctx, "SELECT current_database()").Scan(&name))
	_, err = db.Exec(ctx, itemsSchema+fmt.Sprintf(`
ALTER DATABASE %[1]s SET TimeZone TO %[2]s;
ALTER DATABASE %[1]s SET DateStyle TO 'SQL, DMY';
ALTER DATABASE %[1]s SET extra_float_digits TO 0;`, pgx.Identifier{name}.Sanitize(), quote(zone)))
	require.NoError(t, err)
	// This session reads the source for comparison: doubles in their
	// shortest exact form, not rounded to 15 digits.
	_, err = db.Exec(ctx, "SET extra_float_digits TO 1")
	require.NoError(t, err)
	return database{dsn: dsn, name: name, db: db}
}

func quote(s string) string { return "'" + s + "'" }

// daemonLogger is a JSON logger at info level for a daemon started in the
// test, and the buffer it writes to; the end of the log is shown when the
// test fails.
func daemonLogger(t *testing.T) (*slog.Logger, *testkit.LockedBuffer) {
	logs := &testkit.LockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log (end):\n%s", testkit.Tail(logs.String(), 64<<10))
		}
	})
	return slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})), logs
}
