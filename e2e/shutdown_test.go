package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/internal/testkit"
)

// TestSIGTERMWithTargetDown runs the built binary while the target fails
// every record write (an error answer, or none within the request timeout)
// and the reader is held back by a full byte budget: SIGTERM must still
// end it with exit code 0, the slot must not pass the changes the target
// never took, and a restart once the target is back must bring the table
// to the source's state.
func TestSIGTERMWithTargetDown(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		src, fk, _ := begin(t, tg, 100, 3, false)
		db := src.db
		bin := newBinary(t, src, fk, 50, 3*time.Second, func(yaml string) string {
			return strings.Replace(yaml, "  shutdown_timeout:", "  max_in_flight_bytes: 64KiB\n  batch_bytes: 16KiB\n  shutdown_timeout:", 1)
		})

		p := bin.start(t, "target goes down")
		waitMirror(t, db, tg, fk, mirrorTimeout, p.exited)
		slotCatchesUp(t, src, 30*time.Second, p.exited)

		fk.down()
		_, err := db.Exec(ctx, `INSERT INTO items (id, name) SELECT g, repeat('x', 1000) FROM generate_series(100001, 101000) g`)
		require.NoError(t, err)
		// The insert position: with synchronous_commit off the commit may
		// not be written yet, and the write position would lie before it.
		var committed string
		require.NoError(t, db.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&committed))
		failed := func() int { return writeCount(fk) - fk.writeFaults()["none"] }
		before := failed()
		testkit.Eventually(t, 30*time.Second, "the daemon to try writing to the down target", func() bool { return failed() >= before+3 })

		// A hang detector, not a timing assertion: without the fix the
		// daemon waits for the target forever.
		p.terminate(t, 30*time.Second)
		var passed bool
		require.NoError(t, db.QueryRow(ctx, "SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1", src.name, committed).Scan(&passed))
		require.False(t, passed, "the slot passed changes the target never confirmed")

		fk.faults(0)
		p = bin.start(t, "target back")
		waitMirror(t, db, tg, fk, mirrorTimeout, p.exited)
		slotCatchesUp(t, src, 30*time.Second, p.exited)
		p.terminate(t, 30*time.Second)
		bin.log(t)
		requireNoDeadLetters(t, bin.stateDir)
	})
}

// writeCount is how many record writes the fake saw.
func writeCount(fk fake) int {
	n := 0
	for _, c := range fk.writeFaults() {
		n += c
	}
	return n
}
