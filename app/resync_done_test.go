package app

import (
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/state"
)

// TestFinishedResyncNeverShowsAsRunning: the stream settles the last chunk
// (done) and the copy sees its acknowledgement, in either order; the
// status must end up saying the resync is over, with every row counted.
func TestFinishedResyncNeverShowsAsRunning(t *testing.T) {
	for _, doneFirst := range []bool{true, false} {
		store, err := state.Open(t.TempDir())
		require.NoError(t, err)
		mon := monitor.New(prometheus.NewRegistry())
		mon.AddTable("public.big", "lark", "big")
		rs := &resyncer{store: store, monitor: mon, logger: slog.New(slog.DiscardHandler), running: map[string]bool{"public.big": true}}
		rs.acknowledged("public.big", 5000, 5000, 1, false)
		if doneFirst {
			require.NoError(t, rs.done("public.big"))
			rs.acknowledged("public.big", 7000, 7000, 2, true)
		} else {
			rs.acknowledged("public.big", 7000, 7000, 2, true)
			require.NoError(t, rs.done("public.big"))
		}
		tables := mon.Snapshot().Tables
		require.Len(t, tables, 1)
		require.False(t, tables[0].Resyncing, "done first: %v", doneFirst)
		require.True(t, tables[0].SnapshotDone, "done first: %v", doneFirst)
		require.EqualValues(t, 7000, tables[0].SnapshotRows, "done first: %v", doneFirst)
	}
}
