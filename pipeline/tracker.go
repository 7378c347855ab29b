// Package pipeline carries mapped records from the replication stream to the
// target writers: per-table batches coalesced by key, a byte budget that
// pushes back into the reader, one worker per target table applying batches
// in commit order, dead letters, and the tracker that turns confirmed writes
// into an acknowledged LSN.
package pipeline

import (
	"sync"
	"time"

	"github.com/replicator-cdc/replicator"
)

// txnID identifies an open unit in the tracker: a source transaction, a
// keepalive mark, or a snapshot chunk.
type txnID uint64

type txnEntry struct {
	at      time.Time // commit time, for the lag
	end     replicator.LSN
	pending int
	closed  bool
}

// Tracker computes the acknowledged position: the end of the longest prefix
// of units (in stream order) that are closed and fully confirmed. Positions
// inside a transaction are never acknowledged.
type Tracker struct {
	mu      sync.Mutex
	head    txnID // id of entries[0]
	entries []txnEntry
	acked   replicator.LSN
}

// NewTracker starts acknowledged at start: what the slot already confirmed.
func NewTracker(start replicator.LSN) *Tracker {
	return &Tracker{acked: start}
}

// Begin opens a unit in stream order; at is when its source committed.
func (t *Tracker) Begin(at time.Time) txnID {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.entries = append(t.entries, txnEntry{at: at})
	return t.head + txnID(len(t.entries)-1)
}

// Add counts n more records of unit id that must be confirmed.
func (t *Tracker) Add(id txnID, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.entries[id-t.head].pending += n
}

// Commit closes unit id: once its records are confirmed, end is acknowledged.
func (t *Tracker) Commit(id txnID, end replicator.LSN) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := &t.entries[id-t.head]
	e.end, e.closed = end, true
	t.advance()
}

// Done confirms n records of unit id.
func (t *Tracker) Done(id txnID, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.entries[id-t.head].pending -= n
	t.advance()
}

// Mark acknowledges lsn once everything begun before it is acknowledged. A
// run of marks behind the same open unit collapses into one entry.
func (t *Tracker) Mark(lsn replicator.LSN) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.entries) == 0 {
		if lsn > t.acked {
			t.acked = lsn
		}
		return
	}
	if last := &t.entries[len(t.entries)-1]; last.closed && last.pending == 0 {
		if lsn > last.end {
			last.end = lsn
		}
		return
	}
	t.entries = append(t.entries, txnEntry{end: lsn, closed: true})
}

// Acknowledged returns the acknowledged position.
func (t *Tracker) Acknowledged() replicator.LSN {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.acked
}

// Oldest returns the commit time of the oldest unit not yet acknowledged.
func (t *Tracker) Oldest() (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.entries {
		if !e.at.IsZero() {
			return e.at, true
		}
	}
	return time.Time{}, false
}

// Idle reports whether every unit begun so far is acknowledged.
func (t *Tracker) Idle() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries) == 0
}

func (t *Tracker) advance() {
	n := 0
	for n < len(t.entries) && t.entries[n].closed && t.entries[n].pending == 0 {
		if t.entries[n].end > t.acked {
			t.acked = t.entries[n].end
		}
		n++
	}
	if n == 0 {
		return
	}
	t.head += txnID(n)
	t.entries = t.entries[n:]
	if len(t.entries) == 0 {
		// Drop the backing array so a burst of many small transactions does
		// not pin its peak size forever.
		t.entries = nil
	}
}
