package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Start launches a server for one test (or benchmark) and stops it when
// the test ends. It fails the test if the server cannot start, and skips it
// when Options asks for settings that the EnvDSN server cannot be given.
func Start(tb testing.TB, opts ...Options) *Cluster {
	tb.Helper()
	c, err := Launch(tb.Context(), opts...)
	if errors.Is(err, ErrExternalServer) {
		tb.Skip(err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Stop)
	return c
}

// NewDatabase creates a database of its own for the test and returns its
// DSN. The name is derived from the test's name, made unique, and kept
// lower case so that hand-written SQL needs no quoting.
func (c *Cluster) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name := databaseName(tb.Name())
	dsn, err := c.CreateDatabase(tb.Context(), name)
	if err != nil {
		tb.Fatal(err)
	}
	if c.external {
		// Only an external server outlives the test binary; a local one is
		// deleted whole by Stop, so dropping there would be wasted work.
		tb.Cleanup(func() {
			// tb.Context is already cancelled when cleanup runs.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := c.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
				tb.Logf("pgtest: drop database %s: %v", name, err)
			}
		})
	}
	return dsn
}

// databaseName turns a test name into a database name that is unique even
// across test binaries sharing an EnvDSN server, within the 63-byte limit
// on identifiers.
func databaseName(testName string) string {
	const prefixLimit = 40
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		if b.Len() == prefixLimit {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String() + "_" + strings.ToLower(rand.Text()[:10])
}

// Main runs a test binary's tests against one server shared by all of
// them: it starts the server, hands it to use, runs the tests, stops the
// server and exits with the tests' status. Call it from TestMain.
func Main(m *testing.M, use func(*Cluster), opts ...Options) {
	c, err := Launch(context.Background(), opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start PostgreSQL:", err)
		os.Exit(1)
	}
	use(c)
	code := m.Run()
	c.Stop()
	os.Exit(code)
}
