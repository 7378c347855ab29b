package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/replicator-cdc/replicator/pipeline"
	"github.com/replicator-cdc/replicator/replication"
	"github.com/replicator-cdc/replicator/state"
)

func TestTransientSource(t *testing.T) {
	pg := func(code string) error { return &pgconn.PgError{Severity: "FATAL", Code: code, Message: "m"} }
	wrap := func(err error) error { return fmt.Errorf("mapping items: read row after key change: %w", err) }
	// A real refused connection, as pgconn reports it while the server is down.
	_, refused := pgconn.Connect(context.Background(), "postgres://u@127.0.0.1:1/db?sslmode=disable&connect_timeout=2")
	if refused == nil {
		t.Fatal("connecting to port 1 succeeded")
	}
	refusedTarget := &pipeline.TargetError{Err: fmt.Errorf("target mem: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"EOF", wrap(io.EOF), true},
		{"unexpected EOF", wrap(io.ErrUnexpectedEOF), true},
		{"stream lost", fmt.Errorf("%w: receive: %w", replication.ErrStreamLost, errors.New("x")), true},
		{"net error", wrap(&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), true},
		{"refused connect", fmt.Errorf("source: connect: %w", refused), true},
		{"conn closed", wrap(pgconn.ErrConnClosed), true},
		{"admin shutdown", wrap(pg("57P01")), true},
		{"crash shutdown", pg("57P02"), true},
		{"cannot connect now", fmt.Errorf("replication: connect: %w", pg("57P03")), true},
		{"connection exception", pg("08006"), true},
		{"connection failure", pg("08001"), true},
		{"bad password", fmt.Errorf("source: connect: %w", pg("28P01")), false},
		{"no database", pg("3D000"), false},
		{"no table", wrap(pg("42P01")), false},
		{"syntax", pg("42601"), false},
		{"slot active", pg("55006"), false},
		{"canceled", wrap(context.Canceled), false},
		{"slot mismatch", fmt.Errorf("%w: x", ErrSlotMismatch), false},
		{"slot in use", fmt.Errorf("%w: x", errSlotInUse), false},
		{"slot lost", fmt.Errorf("%w: x", errSlotLost), false},
		{"target down", refusedTarget, false},
		{"halt", errors.New("mapping items: halted: value out of range"), false},
	} {
		if got := transientSource(tc.err); got != tc.want {
			t.Errorf("%s: transientSource(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// TestClassifySourceFixes: what a person must fix is fatal and says what
// to do; a server starting up or full of connections is waited for.
func TestClassifySourceFixes(t *testing.T) {
	pg := func(code string) error {
		return fmt.Errorf("source: connect: %w", &pgconn.PgError{Severity: "FATAL", Code: code, Message: "m"})
	}
	for _, tc := range []struct {
		code      string
		transient bool
		fix       string
	}{
		{"28P01", false, "password of source.dsn is wrong"},
		{"28000", false, "pg_hba.conf"},
		{"3D000", false, "database of source.dsn does not exist"},
		{"42501", false, "REPLICATION"},
		{"42P01", false, "table"},
		{"42703", false, "column"},
		{"42601", false, ""},
		{"53300", true, ""},
		{"57P03", true, ""},
		{"08006", true, ""},
	} {
		transient, fix := classifySource(pg(tc.code))
		if transient != tc.transient || (tc.fix == "") != (fix == "") || !strings.Contains(fix, tc.fix) {
			t.Errorf("%s: classifySource = %v, %q; want %v and a fix with %q", tc.code, transient, fix, tc.transient, tc.fix)
		}
		explained := explainFatal(pg(tc.code)).Error()
		if tc.fix != "" && !strings.Contains(explained, tc.fix) {
			t.Errorf("%s: explainFatal = %q, want it to say %q", tc.code, explained, tc.fix)
		}
	}
}

// TestTransientSourceStorage: a full or broken state directory is never a
// lost connection, although a bare errno looks like a net.Error.
func TestTransientSourceStorage(t *testing.T) {
	for _, err := range []error{
		&os.PathError{Op: "write", Path: "/state/.state.json.tmp-1", Err: syscall.ENOSPC},
		&os.LinkError{Op: "rename", Old: "a", New: "b", Err: syscall.EEXIST},
		fmt.Errorf("%w: %w", state.ErrStorage, syscall.EIO),
	} {
		if transientSource(err) {
			t.Errorf("transientSource(%v) = true", err)
		}
	}
}
