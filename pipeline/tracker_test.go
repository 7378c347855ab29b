package pipeline

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
)

// Invariant 1: only the contiguous prefix of fully confirmed transactions
// is acknowledged, at transaction ends.
func TestTrackerAcknowledgesContiguousPrefixOnly(t *testing.T) {
	tr := NewTracker(100)
	a := tr.Begin(time.Time{})
	tr.Add(a, 2)
	tr.Commit(a, 200)
	b := tr.Begin(time.Time{})
	tr.Add(b, 1)
	tr.Commit(b, 300)

	tr.Done(b, 1)
	require.Equal(t, replicator.LSN(100), tr.Acknowledged(), "a later transaction confirmed first must wait for the earlier one")
	tr.Done(a, 1)
	require.Equal(t, replicator.LSN(100), tr.Acknowledged(), "a partly confirmed transaction is not acknowledged")
	tr.Done(a, 1)
	require.Equal(t, replicator.LSN(300), tr.Acknowledged())
	require.True(t, tr.Idle())
}

func TestTrackerNeverAcknowledgesAnOpenTransaction(t *testing.T) {
	tr := NewTracker(0)
	a := tr.Begin(time.Time{})
	tr.Add(a, 1)
	tr.Done(a, 1)
	require.Equal(t, replicator.LSN(0), tr.Acknowledged(), "records confirmed before the commit arrives do not acknowledge anything")
	tr.Commit(a, 50)
	require.Equal(t, replicator.LSN(50), tr.Acknowledged())
}

// Keepalive marks travel in order with data: an idle mark is acknowledged
// only after everything begun before it (invariant 7 without losing 1).
func TestTrackerMarksWaitForEarlierTransactions(t *testing.T) {
	tr := NewTracker(10)
	tr.Mark(20)
	require.Equal(t, replicator.LSN(20), tr.Acknowledged(), "with nothing in flight a keepalive moves the position")
	a := tr.Begin(time.Time{})
	tr.Add(a, 1)
	tr.Commit(a, 30)
	tr.Mark(40)
	tr.Mark(50)
	require.Equal(t, replicator.LSN(20), tr.Acknowledged())
	tr.Done(a, 1)
	require.Equal(t, replicator.LSN(50), tr.Acknowledged())
	require.True(t, tr.Idle())
}

func TestTrackerEmptyTransactionsAdvance(t *testing.T) {
	tr := NewTracker(0)
	for i := 1; i <= 1000; i++ {
		id := tr.Begin(time.Time{})
		tr.Commit(id, replicator.LSN(i))
	}
	require.Equal(t, replicator.LSN(1000), tr.Acknowledged())
	require.True(t, tr.Idle())
}
