package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/replicator-cdc/replicator/pipeline"
	"github.com/replicator-cdc/replicator/replication"
	"github.com/replicator-cdc/replicator/state"
)

// transientSource says an attempt failed because the source went away
// (a restart, a terminated backend, a dead network) and a new attempt may
// succeed. Everything else needs a person: it stays fatal.
func transientSource(err error) bool {
	transient, _ := classifySource(err)
	return transient
}

// sourceFixes say what a person does about a server's answer that no retry
// changes, by SQLSTATE.
var sourceFixes = map[string]string{
	"28P01": "the password of source.dsn is wrong: correct it (or the environment variable it names) and start again",
	"28000": "the server refuses this role or host (no such role, or no pg_hba.conf line for it): create the role, fix source.dsn's user, or add a pg_hba.conf line allowing it (replication connections need one naming 'replication' too), then start again",
	"3D000": "the database of source.dsn does not exist: create it or fix the database name in source.dsn, then start again",
	"42501": "the role of source.dsn lacks a permission: it needs LOGIN and REPLICATION (ALTER ROLE ... REPLICATION), SELECT on the mapped tables and CREATE on the database for the publication; grant them and start again",
	"42P01": "a table the daemon reads does not exist: create it or fix the mapping's source, then start again",
	"42703": "a column the daemon reads does not exist: fix the mapping's columns, then start again",
}

// classifySource sorts an attempt's failure: transient (connect again
// after a wait) or fatal, with what a person should do about it when the
// server's answer says ("" when the error says it itself).
func classifySource(err error) (transient bool, fix string) {
	if err == nil || errors.Is(err, context.Canceled) {
		return false, ""
	}
	for _, own := range []error{ErrSlotMismatch, errSlotInUse, errSlotLost, state.ErrStorage} {
		if errors.Is(err, own) {
			return false, ""
		}
	}
	if _, ok := errors.AsType[*pipeline.TargetError](err); ok {
		return false, ""
	}
	// A server's answer decides: only connection exceptions and shutdowns
	// pass, never bad credentials, a missing database or a missing table.
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", "53300", "57P05", "25P03":
			// Terminated, crashed, starting up or in recovery, too many
			// connections, or a lock session ended as idle (lock.go): the
			// server itself is fine a moment later.
			return true, ""
		}
		if strings.HasPrefix(pgErr.Code, "08") {
			return true, ""
		}
		return false, sourceFixes[pgErr.Code]
	}
	if errors.Is(err, replication.ErrStreamLost) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, pgconn.ErrConnClosed) {
		return true, ""
	}
	// Only a network operation's failure: a bare errno (say ENOSPC from
	// the state directory) looks like a net.Error too.
	if _, ok := errors.AsType[*net.OpError](err); ok {
		return true, ""
	}
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		return true, ""
	}
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err), ""
}

// explainFatal adds what to do to a fatal failure whose message does not
// say it.
func explainFatal(err error) error {
	if _, fix := classifySource(err); fix != "" {
		return fmt.Errorf("%w: %s", err, fix)
	}
	return err
}
