package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/replicator-cdc/replicator/pipeline"
	"github.com/replicator-cdc/replicator/replication"
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
