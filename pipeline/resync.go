package pipeline

import (
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/mapping"
)

// The logical messages of an online resync (pg_logical_emit_message, non
// transactional, so each lands in the stream at its own WAL position rather
// than at some transaction's commit).
const (
	// ResyncPrefix marks a chunk's watermarks: "low SOURCE RUN-SEQ" before
	// the chunk is read, "high SOURCE RUN-SEQ" after.
	ResyncPrefix = "replicator-resync"
	// ResyncRequestPrefix asks the daemon reading the stream to resync the
	// source table the content names (replicator resync --table).
	ResyncRequestPrefix = "replicator-resync-request"
)

// ResyncChunk is one key-ordered chunk of a table read between its
// watermarks, handed to the stream to emit at the high one.
type ResyncChunk struct {
	// Tables are the source table's mappings (several for a fan-out):
	// each gets every row.
	Tables []*mapping.Table
	Rows   [][]replicator.Cell
	// Visible says whether the chunk's read saw a transaction's changes.
	Visible func(xid uint32) bool
	// Last is the table's final chunk.
	Last bool
	// Emitted is closed once the chunk is in the pipeline; At is then the
	// high watermark's position, acknowledged once its rows are written.
	Emitted chan struct{}
	At      replicator.LSN
	// Kept is how many records went into the pipeline.
	Kept int
}

// Resyncs lets online resyncs (DBLog-style) run beside the stream. A chunk
// row is dropped when the stream already wrote a version of it the chunk
// may not hold: the last change of its key the stream met is inside the
// chunk's watermark window, or comes from a transaction the chunk's read
// did not see. The stream's own change then wins, and every other row is
// written at the high watermark, in stream order with the changes after it.
type Resyncs struct {
	// OnRequest starts a resync the stream asked for.
	OnRequest func(source string)
	// OnDone runs once a table's last chunk is acknowledged.
	OnDone func(source string) error

	mu      sync.Mutex
	offered map[string]*ResyncChunk
	acked   func() replicator.LSN

	// The stream's goroutine's own.
	tables  map[string]*resyncWindow
	settles []resyncSettle
}

// resyncWindow follows a source table's changes while it is resynced, per
// mapping (the mappings of a fan-out may have different keys).
type resyncWindow struct {
	// changed holds the transaction that last changed each key since the
	// resync began, until a chunk's read saw it.
	changed  map[*mapping.Rule]map[string]uint32
	inWindow map[*mapping.Rule]map[string]bool
	open     bool
}

type resyncSettle struct {
	at     replicator.LSN
	source string
}

// Track starts following source's changes for a resync about to begin. It
// runs on the stream's goroutine, before the resync writes its first
// watermark: every change the stream meets from here on is remembered, so
// one that committed before a chunk's low watermark yet was not visible to
// its read still wins over the chunk.
func (r *Resyncs) Track(source string) {
	if r.tables == nil {
		r.tables = map[string]*resyncWindow{}
	}
	if r.tables[source] == nil {
		r.tables[source] = &resyncWindow{changed: map[*mapping.Rule]map[string]uint32{}}
	}
}

// Offer hands the stream the chunk it emits at the high watermark id.
func (r *Resyncs) Offer(id string, c *ResyncChunk) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.offered == nil {
		r.offered = map[string]*ResyncChunk{}
	}
	r.offered[id] = c
}

func (r *Resyncs) take(id string) *ResyncChunk {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.offered[id]
	delete(r.offered, id)
	return c
}

// Acknowledged is the stream's acknowledged position (0 before the stream
// runs); safe from any goroutine.
func (r *Resyncs) Acknowledged() replicator.LSN {
	r.mu.Lock()
	acked := r.acked
	r.mu.Unlock()
	if acked == nil {
		return 0
	}
	return acked()
}

// noteChange remembers a streamed change of a table being resynced.
func (r *Resyncs) noteChange(t *mapping.Table, rec *replicator.Record, xid uint32) {
	if r == nil || len(r.tables) == 0 {
		return
	}
	w := r.tables[t.Rule.Source]
	if w == nil {
		return
	}
	k := rec.KeyString()
	changed := w.changed[t.Rule]
	if changed == nil {
		changed = map[string]uint32{}
		w.changed[t.Rule] = changed
	}
	changed[k] = xid
	if w.open {
		in := w.inWindow[t.Rule]
		if in == nil {
			in = map[string]bool{}
			w.inWindow[t.Rule] = in
		}
		in[k] = true
	}
}

// stale says whether the stream met a change of rec's key that the chunk
// may not hold.
func (w *resyncWindow) stale(t *mapping.Table, rec *replicator.Record, visible func(uint32) bool) bool {
	k := rec.KeyString()
	if w.inWindow[t.Rule][k] {
		return true
	}
	xid, ok := w.changed[t.Rule][k]
	return ok && !visible(xid)
}

// settle reports the tables whose last chunk is acknowledged.
func (r *Resyncs) settle(acked replicator.LSN) error {
	if r == nil {
		return nil
	}
	for len(r.settles) > 0 && r.settles[0].at <= acked {
		s := r.settles[0]
		r.settles = r.settles[1:]
		if r.OnDone != nil {
			if err := r.OnDone(s.source); err != nil {
				return err
			}
		}
	}
	return nil
}

// message handles a resync request or watermark met in the stream.
func (s *StreamSink) resyncMessage(m *replicator.Message) error {
	r := s.resync
	if r == nil {
		return nil
	}
	if m.Prefix == ResyncRequestPrefix {
		if r.OnRequest != nil {
			r.OnRequest(string(m.Content))
		}
		return nil
	}
	kind, id, ok := strings.Cut(string(m.Content), " ")
	source, _, _ := strings.Cut(id, " ")
	w := r.tables[source]
	if !ok || w == nil {
		// A watermark of a resync this process did not start (replayed
		// after a restart, which starts the resync over).
		return nil
	}
	switch kind {
	case "low":
		w.open, w.inWindow = true, map[*mapping.Rule]map[string]bool{}
	case "high":
		c := r.take(id)
		if c == nil {
			// Replayed after a restart: the chunk is read again.
			w.open, w.inWindow = false, nil
			return nil
		}
		c.At = m.LSN
		defer close(c.Emitted)
		err := s.emitChunk(w, c, m.LSN)
		w.open, w.inWindow = false, nil
		if err != nil {
			return err
		}
		for _, changed := range w.changed {
			for k, xid := range changed {
				if c.Visible(xid) {
					delete(changed, k)
				}
			}
		}
		if c.Last {
			delete(r.tables, source)
			r.settles = append(r.settles, resyncSettle{at: m.LSN, source: source})
		}
	}
	return nil
}

// emitChunk adds the chunk's rows the stream did not make stale, as one
// unit ending at the high watermark, which a drain then waits for like a
// commit.
func (s *StreamSink) emitChunk(w *resyncWindow, c *ResyncChunk, at replicator.LSN) error {
	s.p.Begin(s.tracker, time.Now())
	for _, cells := range c.Rows {
		for _, t := range c.Tables {
			rec, err := t.Upsert(cells, at)
			if row, ok := errors.AsType[*mapping.RowError](err); ok {
				if err := s.p.Reject(t, row.Rejection); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			if w.stale(t, &rec, c.Visible) {
				continue
			}
			if err := s.p.Add(s.ctx, t, rec); err != nil {
				return err
			}
			c.Kept++
		}
	}
	s.p.Commit(at)
	s.lastCommit = at
	return nil
}

// Resync lets the sink run online resyncs.
func (s *StreamSink) Resync(r *Resyncs) {
	s.resync = r
	r.mu.Lock()
	r.acked = s.tracker.Acknowledged
	r.mu.Unlock()
}
