package app_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/internal/testkit"
)

// Invariant 4, through the daemon: while the reader waits for a target that
// does not answer (the byte budget is spent), standby status updates keep
// reaching the server, so the walsender does not time the connection out.
// The pipeline's own test proves it calls its StatusUpdate while it waits;
// this one proves the stream gives it one.
func TestStatusUpdatesFlowWhileTargetBlocks(t *testing.T) {
	e := newEnv(t, itemsSchema)
	release := make(chan struct{})
	var once sync.Once
	blocked := make(chan struct{})
	e.mem.BeforeWrite = func(ctx context.Context, _ replicator.Batch) error {
		once.Do(func() { close(blocked) })
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Rows of 1 KiB against a 16 KiB budget: the reader waits after a few.
	r := e.startStreaming(e.config(itemsMapping, "  max_in_flight_bytes: 16KiB\n  batch_bytes: 4KiB"))
	e.exec(`INSERT INTO items (id, name) SELECT g, repeat('x', 1024) FROM generate_series(1, 200) g`)
	select {
	case <-blocked:
	case <-time.After(60 * time.Second):
		t.Fatal("the target was never written to")
	}
	var since time.Time
	require.NoError(t, e.db.QueryRow(context.Background(), "SELECT now()").Scan(&since))
	// Status updates come every status_interval (1s): several must arrive
	// while every write is held.
	testkit.Eventually(t, 30*time.Second, "status updates while the target blocks", func() bool {
		var later bool
		err := e.db.QueryRow(context.Background(),
			`SELECT coalesce(max(reply_time) > $1::timestamptz + interval '3 seconds', false) FROM pg_stat_replication WHERE application_name = 'replicator'`, since).Scan(&later)
		return err == nil && later
	})
	require.Zero(t, e.mem.Len("items"), "nothing may land while the target blocks")
	close(release)
	e.waitMirror("items", "items", 60*time.Second, "id")
	require.NoError(t, r.stop())
}
