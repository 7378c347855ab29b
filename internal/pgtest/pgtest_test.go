package pgtest_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/internal/pgtest"
)

// pg is shared by the tests of this binary, as the package doc describes.
var pg *pgtest.Cluster

func TestMain(m *testing.M) { pgtest.Main(m, func(c *pgtest.Cluster) { pg = c }) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryString(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	var s string
	require.NoError(t, conn.QueryRow(t.Context(), sql).Scan(&s))
	return s
}

func TestLogicalDecoding(t *testing.T) {
	t.Parallel()
	conn := connect(t, pg.NewDatabase(t))
	assert.Equal(t, "logical", queryString(t, conn, "SHOW wal_level"))

	// The point of the helper: a pgoutput slot can be created and read.
	ctx := t.Context()
	_, err := conn.Exec(ctx, "SELECT pg_create_logical_replication_slot('pgtest_probe', 'pgoutput')")
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "SELECT pg_drop_replication_slot('pgtest_probe')")
	require.NoError(t, err)

	if pg.BinDir() != "" {
		assert.FileExists(t, filepath.Join(pg.BinDir(), "pg_recvlogical"))
	}
}

func TestDatabasesAreIsolated(t *testing.T) {
	t.Parallel()
	a := connect(t, pg.NewDatabase(t))
	b := connect(t, pg.NewDatabase(t))
	assert.NotEqual(t, queryString(t, a, "SELECT current_database()"), queryString(t, b, "SELECT current_database()"))

	_, err := a.Exec(t.Context(), "CREATE TABLE only_in_a (id int)")
	require.NoError(t, err)
	assert.Equal(t, "", queryString(t, b, "SELECT coalesce(to_regclass('only_in_a')::text, '')"))
}

func TestCreateRole(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := "roles_" + strings.ToLower(rand.Text()[:10])
	_, err := pg.CreateDatabase(ctx, db)
	require.NoError(t, err)

	for _, replication := range []bool{true, false} {
		t.Run(fmt.Sprint("replication=", replication), func(t *testing.T) {
			// Role names are server-wide, so they must not repeat across runs
			// against an external server.
			name := "pgtest_role_" + strings.ToLower(rand.Text()[:10])
			dsn, err := pg.CreateRole(ctx, name, replication)
			require.NoError(t, err)
			dsn, err = pgtest.WithDatabase(dsn, db)
			require.NoError(t, err)

			conn := connect(t, dsn)
			assert.Equal(t, name, queryString(t, conn, "SELECT current_user"))
			assert.Equal(t, db, queryString(t, conn, "SELECT current_database()"))
			assert.Equal(t, fmt.Sprint(replication), queryString(t, conn, "SELECT rolreplication::text FROM pg_roles WHERE rolname = current_user"))
		})
	}
}

// TestWalLevelReplica starts a second server that cannot decode logically,
// as the negative tests of the replicator do, and checks that it is refused
// as an external server. It is not parallel because it sets EnvDSN.
func TestWalLevelReplica(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{Settings: map[string]string{"wal_level": "replica"}})
	conn := connect(t, c.DSN("postgres"))
	assert.Equal(t, "replica", queryString(t, conn, "SHOW wal_level"))
	_, err := conn.Exec(t.Context(), "SELECT pg_create_logical_replication_slot('pgtest_probe', 'pgoutput')")
	require.ErrorContains(t, err, "wal_level")
	conn.Close(t.Context())

	t.Setenv(pgtest.EnvDSN, c.DSN("postgres"))
	_, err = pgtest.Launch(t.Context())
	require.ErrorContains(t, err, "wal_level=replica")

	c.Stop()
	_, err = pgx.Connect(t.Context(), c.DSN("postgres"))
	assert.Error(t, err, "server still answers after Stop")
}

// TestExternalServer uses the shared cluster through EnvDSN, in the
// keyword/value form, which the shared cluster's own DSNs do not exercise.
func TestExternalServer(t *testing.T) {
	if os.Getenv(pgtest.EnvDSN) != "" {
		t.Skip("the shared cluster is already external; its password would be lost here")
	}
	cfg, err := pgx.ParseConfig(pg.DSN("postgres"))
	require.NoError(t, err)
	t.Setenv(pgtest.EnvDSN, fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=disable", cfg.Host, cfg.Port, cfg.User))

	_, err = pgtest.Launch(t.Context(), pgtest.Options{Settings: map[string]string{"wal_level": "replica"}})
	require.ErrorIs(t, err, pgtest.ErrExternalServer)

	ext, err := pgtest.Launch(t.Context())
	require.NoError(t, err)
	dsn := ext.NewDatabase(t)
	conn := connect(t, dsn)
	assert.Equal(t, "logical", queryString(t, conn, "SHOW wal_level"))
	assert.True(t, strings.HasPrefix(queryString(t, conn, "SELECT current_database()"), "testexternalserver_"))

	// Stopping the external server's handle must leave the server running.
	ext.Stop()
	connect(t, pg.DSN("postgres"))
}

func TestManagedSettingsRefused(t *testing.T) {
	t.Parallel()
	_, err := pgtest.Launch(t.Context(), pgtest.Options{Settings: map[string]string{"port": "5432"}})
	require.Error(t, err)
}

func TestWithDatabase(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ dsn, want string }{
		{"postgres://u:p@h:5/old?sslmode=disable", "postgres://u:p@h:5/new%20db?sslmode=disable"},
		{"postgresql://h/old?dbname=old&sslmode=require", "postgresql://h/new%20db?sslmode=require"},
		{"host=h dbname=old", "host=h dbname=old dbname='new db'"},
		{"", "dbname='new db'"},
	} {
		got, err := pgtest.WithDatabase(tc.dsn, "new db")
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, tc.dsn)

		cfg, err := pgx.ParseConfig(got)
		require.NoError(t, err)
		assert.Equal(t, "new db", cfg.Database, got)
	}
	_, err := pgtest.WithDatabase("postgres://u:secret@h:bad port/x", "db")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret")
}

// TestRestart restarts a server of its own both ways: clients lose their
// connections, and the same DSN reaches the same data afterwards.
func TestRestart(t *testing.T) {
	if os.Getenv(pgtest.EnvDSN) != "" {
		t.Skip("the external server is not ours to restart")
	}
	c := pgtest.Start(t)
	dsn := c.NewDatabase(t)
	conn := connect(t, dsn)
	_, err := conn.Exec(t.Context(), "CREATE TABLE kept (n int); INSERT INTO kept VALUES (1)")
	require.NoError(t, err)
	for _, mode := range []string{"fast", "immediate"} {
		require.NoError(t, c.Restart(t.Context(), mode), mode)
		_, err := conn.Exec(t.Context(), "SELECT 1")
		require.Error(t, err, "%s: the old connection survived", mode)
		conn = connect(t, dsn)
		assert.Equal(t, "1", queryString(t, conn, "SELECT n::text FROM kept"), mode)
	}
	require.Error(t, c.Restart(t.Context(), "smart"))
}

// TestShutdownStartAgain leaves a server down for a while: connecting fails
// until it is started again, with its data.
func TestShutdownStartAgain(t *testing.T) {
	if os.Getenv(pgtest.EnvDSN) != "" {
		t.Skip("the external server is not ours to stop")
	}
	c := pgtest.Start(t)
	dsn := c.NewDatabase(t)
	conn := connect(t, dsn)
	_, err := conn.Exec(t.Context(), "CREATE TABLE kept (n int); INSERT INTO kept VALUES (1)")
	require.NoError(t, err)
	require.NoError(t, c.Shutdown("fast"))
	_, err = pgx.Connect(t.Context(), dsn)
	require.Error(t, err, "connected to a server that was shut down")
	require.NoError(t, c.StartAgain(t.Context()))
	assert.Equal(t, "1", queryString(t, connect(t, dsn), "SELECT n::text FROM kept"))
	require.Error(t, c.Shutdown("smart"))
}
