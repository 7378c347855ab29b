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
	// ResyncPrefix marks a chunk's watermarks: "low SOURCE SEQ" before the
	// chunk is read, "high SOURCE SEQ" after.
	ResyncPrefix = "replicator-resync"
	// ResyncRequestPrefix asks the daemon reading the stream to resync the
	// source table the content names (replicator resync --table).
	ResyncRequestPrefix = "replicator-resync-request"
)

// ResyncChunk is one key-ordered chunk of a table read between its
// watermarks, handed to the stream to emit at the high one.
type ResyncChunk struct {
	Table *mapping.Table
	Rows  [][]replicator.Cell
	// Visible says whether the chunk's read saw a transaction's changes.
	Visible func(xid uint32) bool
	// Last is the table's final chunk.
	Last bool
	// Emitted is closed once the chunk is in the pipeline.
	Emitted chan struct{}
	// Kept is how many of Rows went into the pipeline.
	Kept int
}

// Resyncs lets online resyncs (DBLog-style) run beside the stream. A chunk
// row is dropped when the stream already wrote a newer version of it: its
// key changed inside the chunk's watermark window, or a transaction the
// chunk's read did not see changed it. The stream's own change then wins,
// and everything else is written at the high watermark, in stream order.
type Resyncs struct {
	// OnRequest starts a resync the stream asked for.
	OnRequest func(source string)
	// OnDone runs once a table's last chunk is acknowledged.
	OnDone func(source string) error

	mu      sync.Mutex
	offered map[string]*ResyncChunk

	// The stream's goroutine's own.
	tables  map[string]*resyncWindow
	settles []resyncSettle
}

type resyncWindow struct {
	// changed holds the transaction that last changed each key since the
	// resync began, until a chunk's read saw it.
	changed  map[string]uint32
	inWindow map[string]bool
	open     bool
}

type resyncSettle struct {
	at     replicator.LSN
	source string
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
	w.changed[k] = xid
	if w.open {
		w.inWindow[k] = true
	}
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
	if !ok {
		return nil
	}
	if r.tables == nil {
		r.tables = map[string]*resyncWindow{}
	}
	w := r.tables[source]
	switch kind {
	case "low":
		if w == nil {
			w = &resyncWindow{changed: map[string]uint32{}}
			r.tables[source] = w
		}
		w.open, w.inWindow = true, map[string]bool{}
	case "high":
		c := r.take(id)
		if c == nil || w == nil {
			// A watermark of a resync this process did not start (replayed
			// after a restart, which starts the resync over).
			return nil
		}
		defer close(c.Emitted)
		if err := s.emitChunk(w, c, m.LSN); err != nil {
			return err
		}
		w.open, w.inWindow = false, nil
		for k, xid := range w.changed {
			if c.Visible(xid) {
				delete(w.changed, k)
			}
		}
		if c.Last {
			delete(r.tables, source)
			r.settles = append(r.settles, resyncSettle{at: m.LSN, source: source})
		}
	}
	return nil
}

func (s *StreamSink) emitChunk(w *resyncWindow, c *ResyncChunk, at replicator.LSN) error {
	s.p.Begin(s.tracker, time.Now())
	for _, cells := range c.Rows {
		rec, err := c.Table.Upsert(cells, at)
		if row, ok := errors.AsType[*mapping.RowError](err); ok {
			if err := s.p.Reject(c.Table, row.Rejection); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		k := rec.KeyString()
		if xid, ok := w.changed[k]; w.inWindow[k] || (ok && !c.Visible(xid)) {
			continue
		}
		if err := s.p.Add(s.ctx, c.Table, rec); err != nil {
			return err
		}
		c.Kept++
	}
	s.p.Commit(at)
	return nil
}

// Resync lets the sink run online resyncs.
func (s *StreamSink) Resync(r *Resyncs) { s.resync = r }
