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
// A second instance with a state directory of its own would otherwise copy
// every table again over the first one's newer writes, and then fail to
// stream anyway.
func waitSlotFree(ctx context.Context, conn *pgx.Conn, slot string, logger *slog.Logger) error {
	deadline := time.Now().Add(slotReleaseWait)
	logged := false
	for {
		pid, active, err := replication.SlotHolder(ctx, conn, slot)
		if err != nil || !active {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: slot %s is held by another connection (server process %d): another replicator is probably running against this database. Two instances writing the same targets corrupt the mirror: stop the other one first, or give this one its own source.slot and publication", errSlotInUse, slot, pid)
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
