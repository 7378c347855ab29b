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

// waitSlotFree refuses to go on while another connection holds the slot.
// Instances of the daemon take turns through the lock (lock.go), so the
// holder is a predecessor's server process still on its way out, or a
// consumer that is no replicator: sharing the slot with it would lose
// changes.
func waitSlotFree(ctx context.Context, conn *pgx.Conn, slot string, logger *slog.Logger) error {
	deadline := time.Now().Add(slotReleaseWait)
	logged := false
	for {
		pid, active, err := replication.SlotHolder(ctx, conn, slot)
		if err != nil || !active {
			return err
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
