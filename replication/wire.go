package replication

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/replicator-cdc/replicator"
)

// Wire is a replication connection in streaming mode. One goroutine reads
// and writes it.
type Wire struct {
	pg *pgconn.PgConn
	// walSenderTimeout is the server's: how long its walsender waits for a
	// word from us (0: forever).
	walSenderTimeout time.Duration
	deadlineSet      time.Time
	coalesce         *coalescer
}

// startTimeout bounds starting the stream when ctx has no deadline: a dead
// network must not hang it.
const startTimeout = time.Minute

// writeTimeout bounds one write to the server.
const writeTimeout = 30 * time.Second

// closeTimeout bounds the Terminate message of a close.
const closeTimeout = 2 * time.Second

// StartStream takes the (idle) replication connection over and starts
// streaming from the slot at lsn. On error the connection is closed;
// otherwise close the Wire instead.
func StartStream(ctx context.Context, pg *pgconn.PgConn, slot, publication string, lsn replicator.LSN) (*Wire, error) {
	w := &Wire{pg: pg, coalesce: newCoalescer(pg.Conn())}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}
	timeout, err := showWalSenderTimeout(ctx, pg)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("replication: start: %w", err)
	}
	w.walSenderTimeout = timeout
	err = pglogrepl.StartReplication(ctx, pg, quoteIdent(slot), pglogrepl.LSN(lsn), pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names " + quoteLiteral(publication), "messages 'true'"},
	})
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("replication: start: %w", err)
	}
	return w, nil
}

func showWalSenderTimeout(ctx context.Context, pg *pgconn.PgConn) (time.Duration, error) {
	results, err := pg.Exec(ctx, "SHOW wal_sender_timeout").ReadAll()
	if err != nil {
		return 0, fmt.Errorf("SHOW wal_sender_timeout: %w", err)
	}
	if len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) != 1 {
		return 0, fmt.Errorf("SHOW wal_sender_timeout: unexpected answer shape")
	}
	return parseSettingDuration(string(results[0].Rows[0][0]))
}

// parseSettingDuration reads a time setting as SHOW prints it: "60s",
// "1min", "500ms", "0".
func parseSettingDuration(s string) (time.Duration, error) {
	var n int64
	var unit string
	if _, err := fmt.Sscanf(s, "%d%s", &n, &unit); err != nil {
		if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n != 0 {
			return 0, fmt.Errorf("time setting %q: want a number and a unit", s)
		}
	}
	mult := map[string]time.Duration{"": time.Millisecond, "us": time.Microsecond, "ms": time.Millisecond,
		"s": time.Second, "min": time.Minute, "h": time.Hour, "d": 24 * time.Hour}
	m, ok := mult[unit]
	if !ok || n < 0 {
		return 0, fmt.Errorf("time setting %q: unknown unit", s)
	}
	return time.Duration(n) * m, nil
}

// receive returns the next message from the server, nil when none came
// within a poll interval from now. The message is valid until the next
// receive.
func (w *Wire) receive(now time.Time) (pgproto3.BackendMessage, error) {
	// Setting the deadline per read would cost a timer update per change;
	// a poll interval's precision is all that is needed.
	if now.Sub(w.deadlineSet) >= pollInterval/4 {
		if err := w.pg.Conn().SetReadDeadline(now.Add(pollInterval)); err != nil {
			return nil, fmt.Errorf("%w: set read deadline: %w", ErrStreamLost, err)
		}
		w.deadlineSet = now
	}
	// A background context costs no goroutine per message; the deadline
	// bounds the wait instead.
	msg, err := w.pg.ReceiveMessage(context.Background())
	if err != nil {
		if pgconn.Timeout(err) {
			w.coalesce.waited(now)
			return nil, nil
		}
		return nil, fmt.Errorf("%w: receive: %w", ErrStreamLost, err)
	}
	if data, ok := msg.(*pgproto3.CopyData); ok {
		w.coalesce.received(now, len(data.Data))
	}
	return msg, nil
}

// sendStatus reports positions to the server. flush is what the server may
// discard WAL up to; it is always given explicitly (pglogrepl would report
// write in place of a zero flush, so nothing is reported before there is
// something to acknowledge).
func (w *Wire) sendStatus(write, flush replicator.LSN, replyRequested bool) error {
	if flush == 0 {
		write = 0
	}
	if err := w.pg.Conn().SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return fmt.Errorf("%w: send standby status: %w", ErrStreamLost, err)
	}
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), w.pg, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pglogrepl.LSN(write),
		WALFlushPosition: pglogrepl.LSN(flush),
		WALApplyPosition: pglogrepl.LSN(flush),
		ClientTime:       time.Now(),
		ReplyRequested:   replyRequested,
	})
	if err != nil {
		return fmt.Errorf("%w: send standby status: %w", ErrStreamLost, err)
	}
	return nil
}

// End leaves streaming mode the way the server expects, so that a clean
// stop does not read as a lost standby ("unexpected EOF on standby
// connection" in its log): CopyDone, then whatever the server still sends
// up to its ReadyForQuery. Close then says Terminate. End gives up at
// timeout.
func (w *Wire) End(timeout time.Duration) error {
	// The goodbye is a few small messages: read each at once.
	w.coalesce.waited(time.Now())
	if err := w.pg.Conn().SetDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("replication: end stream: %w", err)
	}
	if _, err := pglogrepl.SendStandbyCopyDone(context.Background(), w.pg); err != nil {
		return fmt.Errorf("replication: end stream: %w", err)
	}
	return nil
}

// Close sends Terminate (within a short bound: the connection may be dead)
// and closes the connection.
func (w *Wire) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	return w.pg.Close(ctx)
}
