// Package pgtest gives tests a real PostgreSQL server with wal_level=logical,
// so replication code is exercised against the actual walsender rather than a
// fake.
//
// # One cluster per test binary
//
// go test runs each package's tests as a separate process, so a cluster
// cannot be shared across packages. Each package that needs PostgreSQL starts
// one cluster in its TestMain (Main does it all) and gives every test its own
// database, which is cheap (a template copy) and lets the tests run in
// parallel:
//
//	var pg *pgtest.Cluster
//
//	func TestMain(m *testing.M) { pgtest.Main(m, func(c *pgtest.Cluster) { pg = c }) }
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		dsn := pg.NewDatabase(t)
//		// connect to dsn, create tables, publications, slots...
//	}
//
// A test that needs a server with different settings starts its own with
// Start, which stops it when the test ends:
//
//	c := pgtest.Start(t, pgtest.Options{Settings: map[string]string{"wal_level": "replica"}})
//
// # Where the server comes from
//
// If REPLICATOR_TEST_DSN is set, that server is used instead of starting one.
// It must run with wal_level=logical, and its user must be allowed to create
// databases and roles and to replicate. Launch refuses it otherwise, and
// refuses it with ErrExternalServer when Options asks for settings it cannot
// apply to a server it does not own (Start skips the test then).
//
// Otherwise Launch runs initdb and postgres from PATH or from
// /usr/lib/postgresql/*/bin (version 15 preferred) in a fresh temporary
// directory, listening on a free 127.0.0.1 port. scripts/ensure-postgres.sh
// installs Debian's packages when they are missing. PostgreSQL refuses to run
// as root, so under root both run as the "postgres" user.
//
// # Cleanup
//
// Stop (or the cleanup Start registers) kills the server and deletes its
// directory. A test binary that dies without reaching Stop — a panic, a
// -timeout, a SIGKILL — cannot run cleanup code; the server is still killed
// then, because it is started with a parent-death signal (Linux only), but
// its temporary directory (pgtest-* under os.TempDir) is left behind.
package pgtest
