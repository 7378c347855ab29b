package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicator-cdc/replicator/replication"
)

// errSlotInUse stops a daemon whose slot another connection streams from.
var errSlotInUse = errors.New("replication slot in use")

// slotReleaseWait is how long a start waits for the slot to be released: a
// predecessor killed a moment ago leaves a server process that needs a
// moment to notice its connection is gone.
const slotReleaseWait = 15 * time.Second

// leftBehindWait is how long a predecessor's walsender may take to go on
// its own before it is ended: a killed one's goes within milliseconds, a
// cut-off one's only after wal_sender_timeout, and every second here
// delays a takeover (lock.go).
const leftBehindWait = 500 * time.Millisecond

// endLeftBehind terminates the server process holding the slot when it is
// a replicator's walsender. This instance holds the lock, so that
// replicator is a predecessor that lost it: killed, or cut off with its
// machine, which the walsender notices only after wal_sender_timeout.
// Without the right to (another role, no pg_signal_backend) the wait goes
// on.
func endLeftBehind(ctx context.Context, conn *pgx.Conn, pid int32, logger *slog.Logger) bool {
	var ended bool
	err := conn.QueryRow(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE pid = $1 AND backend_type = 'walsender' AND application_name = 'replicator'`, pid).Scan(&ended)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		logger.Warn("cannot end the replication connection a previous instance left behind; waiting for the server to", "pid", pid, "error", err)
	}
	return err == nil && ended
}

// waitSlotFree refuses to go on while another connection holds the slot.
// Instances of the daemon take turns through the lock (lock.go), so the
// holder is a predecessor's server process still on its way out, or a
// consumer that is no replicator: sharing the slot with it would lose
// changes.
func waitSlotFree(ctx context.Context, conn *pgx.Conn, slot string, logger *slog.Logger) error {
	start := time.Now()
	deadline := start.Add(slotReleaseWait)
	logged, ended := false, false
	for {
		pid, active, err := replication.SlotHolder(ctx, conn, slot)
		if err != nil || !active {
			return err
		}
		if !ended && time.Since(start) >= leftBehindWait {
			if ended = endLeftBehind(ctx, conn, pid, logger); ended {
				logger.Warn("ended the replication connection a previous active instance left behind (its machine or network is gone; the server would notice only after wal_sender_timeout)", "slot", slot, "pid", pid)
				continue
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: slot %s is held by another connection (server process %d): it is not a replicator holding the lock (pg_recvlogical, another program, or a replicator of an older version). Stop it, or give this daemon its own source.slot and publication", errSlotInUse, slot, pid)
		}
		if !logged {
			logger.Info("replication slot is in use; waiting for it to be released", "slot", slot, "pid", pid, "wait", slotReleaseWait)
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
