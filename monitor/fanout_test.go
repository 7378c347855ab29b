package monitor

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// A source table fanned out to two targets has a row per mapping: each
// counts its own target's confirmations, while the one copy of the table
// (snapshot or online resync) shows its progress on both.
func TestFanOutRowsPerMapping(t *testing.T) {
	m := New(prometheus.NewRegistry())
	m.AddTable("public.people", "lark", "people")
	m.AddTable("public.people", "bots", "t_people")
	m.AddTable("public.other", "lark", "other")
	m.Confirmed("public.people", "bots", "t_people", 5, 1)
	m.DeadLettered("public.people", "lark", "people", 2)
	m.ResyncProgress("public.people", 300, 1000, 3, false)

	rows := m.Snapshot().Tables
	require.Len(t, rows, 3)
	require.Equal(t, Table{Source: "public.other", Target: "lark", Table: "other"}, strip(rows[0]))
	require.Equal(t, Table{Source: "public.people", Target: "bots", Table: "t_people", Upserts: 5, Deletes: 1,
		SnapshotRows: 300, SnapshotTotal: 1000, Resyncing: true, ResyncChunk: 3}, strip(rows[1]))
	require.Equal(t, Table{Source: "public.people", Target: "lark", Table: "people", DeadLetters: 2,
		SnapshotRows: 300, SnapshotTotal: 1000, Resyncing: true, ResyncChunk: 3}, strip(rows[2]))

	m.ResyncProgress("public.people", 1000, 1000, 0, true)
	for _, r := range m.Snapshot().Tables[1:] {
		require.True(t, r.SnapshotDone)
		require.False(t, r.Resyncing)
	}
}

func strip(t Table) Table {
	t.Throughput = nil
	return t
}
