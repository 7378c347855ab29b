package app

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/replicator-cdc/replicator/pipeline"
	"github.com/replicator-cdc/replicator/replication"
)

// transientSource says an attempt failed because the source went away
// (a restart, a terminated backend, a dead network) and a new attempt may
// succeed. Everything else needs a person: it stays fatal.
func transientSource(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	for _, own := range []error{ErrSlotMismatch, errSlotInUse, errSlotLost} {
		if errors.Is(err, own) {
			return false
		}
	}
	if _, ok := errors.AsType[*pipeline.TargetError](err); ok {
		return false
	}
	// A server's answer decides: only connection exceptions and shutdowns
	// pass, never bad credentials, a missing database or a missing table.
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03":
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08")
	}
	if errors.Is(err, replication.ErrStreamLost) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, pgconn.ErrConnClosed) {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}
