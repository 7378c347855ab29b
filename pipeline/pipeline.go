package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/mapping"
)

// Options bound batching and memory.
type Options struct {
	// MaxInFlightBytes bounds records between the reader and confirmation.
	MaxInFlightBytes int64
	// FlushInterval is the longest a record waits in a batch.
	FlushInterval time.Duration
	// BatchRows and BatchBytes flush a batch when reached.
	BatchRows  int
	BatchBytes int64
	// TickInterval is how often a waiting reader calls its StatusUpdate.
	TickInterval time.Duration
}

// DeadLetterWriter durably records rejected records.
type DeadLetterWriter interface {
	Write(target string, spec replicator.TableSpec, rejected []replicator.Rejection) error
}

// Observer is told what the workers confirm; the monitor implements it.
type Observer interface {
	Confirmed(source, target, table string, upserts, deletes int)
	DeadLettered(source, target, table string, n int)
	Error(source string, err error)
	InFlight(bytes int64)
}

// StatusUpdate tells the source the reader is alive while it waits for the
// targets (for budget, for a hand-off, in a drain): the replication stream's
// standby status update, sent when one is due, so that the server does not
// time the connection out while the slot holds the WAL. It runs on the
// reader's goroutine, which owns the connection, and may write the socket
// and save the checkpoint. A stream is opened per connection, so each one
// gives its own (SetStatusUpdate) before it hands the pipeline anything;
// until then (the snapshot) there is nothing to keep alive.
type StatusUpdate func() error

// Route says which writer a rule's records go to.
type Route struct {
	Rule   *mapping.Rule
	Target string
	Writer replicator.Writer
}

// Pipeline batches records per target table and applies them through one
// worker per table, which keeps each key's writes in commit order while
// key-disjoint batches and other tables proceed in parallel. The reader side (Add, Flush, Begin, Commit) is
// used from one goroutine only.
type Pipeline struct {
	opts        Options
	budget      *budget
	queues      map[*mapping.Rule]*tableQueue
	deadLetters DeadLetterWriter
	observer    Observer
	logger      *slog.Logger

	ctx    context.Context // canceled on a fatal error or Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	errMu sync.Mutex
	err   error

	status  StatusUpdate // nil: nothing to keep alive
	tracker *Tracker     // the unit records are currently added to
	unit    txnID
	// uncounted records of unit are reported to the tracker in one call
	// before any batch holding them can be confirmed, not one lock per row.
	uncounted int
}

type tableQueue struct {
	route   Route
	spec    replicator.TableSpec
	pending *batch
	queue   chan *batch
}

// queueDepth bounds the batches waiting for one table's worker; the byte
// budget is what usually binds first.
const queueDepth = 64

// New starts one worker per route (see work).
func New(routes []Route, deadLetters DeadLetterWriter, observer Observer, opts Options, logger *slog.Logger) *Pipeline {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pipeline{
		opts: opts, budget: newBudget(opts.MaxInFlightBytes), queues: make(map[*mapping.Rule]*tableQueue, len(routes)),
		deadLetters: deadLetters, observer: observer, logger: logger, ctx: ctx, cancel: cancel,
	}
	p.start(routes)
	return p
}

// SetStatusUpdate makes u the reader's StatusUpdate from now on. Like the
// reader side, it is for the reader's goroutine only.
func (p *Pipeline) SetStatusUpdate(u StatusUpdate) { p.status = u }

func (p *Pipeline) updateStatus() error {
	if p.status == nil {
		return nil
	}
	return p.status()
}

// TargetError is a target's fatal error: it may wrap network errors, yet
// it says nothing about the source's connection.
type TargetError struct{ Err error }

func (e *TargetError) Error() string { return e.Err.Error() }
func (e *TargetError) Unwrap() error { return e.Err }

// Err returns the first fatal error a worker hit, if any.
func (p *Pipeline) Err() error {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.err
}

func (p *Pipeline) fail(err error) {
	p.errMu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.errMu.Unlock()
	p.cancel()
}

// Begin starts a unit (a transaction or snapshot chunk) in tracker tr; at
// is when its source committed.
func (p *Pipeline) Begin(tr *Tracker, at time.Time) {
	p.tracker, p.unit = tr, tr.Begin(at)
}

// Commit closes the current unit at end.
func (p *Pipeline) Commit(end replicator.LSN) {
	p.count()
	p.tracker.Commit(p.unit, end)
}

func (p *Pipeline) count() {
	if p.uncounted > 0 {
		p.tracker.Add(p.unit, p.uncounted)
		p.uncounted = 0
	}
}

// Add puts a record of the current unit into its table's batch, waiting for
// budget (and updating status meanwhile) when too much is in flight. A wait
// ends with ctx's error when ctx ends: the unit stays open, so it is never
// acknowledged, and what is pending stays for a later Flush or WaitFor.
func (p *Pipeline) Add(ctx context.Context, t *mapping.Table, rec replicator.Record) error {
	q, ok := p.queues[t.Rule]
	if !ok {
		return fmt.Errorf("pipeline: no route for %s", t.Rule.Source)
	}
	if len(rec.Rejected) > 0 {
		if err := p.rejectValues(q, rec); err != nil {
			return err
		}
		rec.Rejected = nil
	}
	size := int64(rec.Size())
	if ok, _ := p.budget.tryAcquire(size); !ok {
		// Hand every pending batch over before waiting: bytes held by
		// batches nobody sends would never come back.
		if err := p.Flush(ctx); err != nil {
			return err
		}
		if err := p.budget.acquire(ctx, p.ctx.Done(), size, p.opts.TickInterval, p.updateStatus); err != nil {
			return p.stopped(err)
		}
	}
	if q.pending == nil {
		q.pending = newBatch(p.opts.BatchRows)
	}
	p.uncounted++
	q.pending.add(rec, size, p.tracker, p.unit)
	if len(q.pending.records) >= p.opts.BatchRows || q.pending.bytes >= p.opts.BatchBytes {
		return p.handOff(ctx, q)
	}
	return nil
}

// rejectValues dead-letters the values the mapping left out of rec before
// rec can be batched, so that they are on disk before its transaction can
// be acknowledged.
func (p *Pipeline) rejectValues(q *tableQueue, rec replicator.Record) error {
	rejected := make([]replicator.Rejection, len(rec.Rejected))
	bare := rec
	bare.Rejected = nil
	for i, v := range rec.Rejected {
		rejected[i] = replicator.Rejection{Record: bare, Column: v.Column, Value: v.Value, Reason: v.Reason}
	}
	return p.reject(q, rejected)
}

// Reject dead-letters a record the mapping refused as a whole (a key it
// cannot encode), or halts when the rule says so. It returns once the dead
// letter is on disk, before anything after it can be acknowledged.
func (p *Pipeline) Reject(t *mapping.Table, r replicator.Rejection) error {
	q, ok := p.queues[t.Rule]
	if !ok {
		return fmt.Errorf("pipeline: no route for %s", t.Rule.Source)
	}
	return p.reject(q, []replicator.Rejection{r})
}

// FlushAged hands over batches older than the flush interval.
func (p *Pipeline) FlushAged(ctx context.Context) error {
	for _, q := range p.queues {
		if q.pending != nil && time.Since(q.pending.started) >= p.opts.FlushInterval {
			if err := p.handOff(ctx, q); err != nil {
				return err
			}
		}
	}
	return p.Err()
}

// Flush hands over every pending batch, or stops with ctx's error.
func (p *Pipeline) Flush(ctx context.Context) error {
	for _, q := range p.queues {
		if q.pending != nil {
			if err := p.handOff(ctx, q); err != nil {
				return err
			}
		}
	}
	return p.Err()
}

// handOff queues q's pending batch for its worker. When the wait for room
// ends early the batch stays pending: a drain after a stop signal can still
// hand it over, and its records keep their unit unacknowledged until then.
func (p *Pipeline) handOff(ctx context.Context, q *tableQueue) error {
	p.count()
	b := q.pending
	timer := time.NewTimer(p.opts.TickInterval)
	defer timer.Stop()
	for {
		select {
		case q.queue <- b:
			q.pending = nil
			return nil
		case <-p.ctx.Done():
			return p.stopped(p.ctx.Err())
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			timer.Reset(p.opts.TickInterval)
			if err := p.updateStatus(); err != nil {
				return err
			}
		}
	}
}

// WaitFor flushes and waits until done reports true, updating status while
// it waits; ctx bounds both.
func (p *Pipeline) WaitFor(ctx context.Context, done func() bool) error {
	if err := p.Flush(ctx); err != nil {
		return err
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	last := time.Now()
	for !done() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.ctx.Done():
			return p.stopped(p.ctx.Err())
		case <-t.C:
		}
		if time.Since(last) >= p.opts.TickInterval {
			last = time.Now()
			if err := p.updateStatus(); err != nil {
				return err
			}
		}
	}
	return p.Err()
}

func (p *Pipeline) stopped(err error) error {
	if perr := p.Err(); perr != nil {
		return perr
	}
	return err
}

// Close stops the workers, abandoning unconfirmed batches (they are
// redelivered from the slot on restart), and waits for them.
func (p *Pipeline) Close() {
	p.cancel()
	for _, q := range p.queues {
		close(q.queue)
	}
	p.wg.Wait()
}

// InFlightBytes is the budget in use.
func (p *Pipeline) InFlightBytes() int64 { return p.budget.inUse() }

type opCounts struct{ upserts, deletes int }

func (p *Pipeline) apply(q *tableQueue, b *batch) (opCounts, error) {
	var counts opCounts
	if b.empty {
		return counts, p.empty(q)
	}
	if len(b.records) == 0 {
		return counts, nil // every record joined an earlier batch (dispatcher.add)
	}
	rejected, err := q.route.Writer.Write(p.ctx, replicator.Batch{Table: q.spec, Records: b.records})
	if err != nil {
		if replicator.IsCleanStop(p.ctx, err) {
			return counts, err
		}
		return counts, &TargetError{fmt.Errorf("target %s, table %s (from %s): %w", q.route.Target, q.spec.Table, q.spec.Source, err)}
	}
	if len(rejected) == 0 {
		return counts, nil
	}
	for _, r := range rejected {
		switch {
		case r.Column != "":
			// The record was written without the refused value.
		case r.Record.Op == replicator.OpDelete:
			counts.deletes++
		default:
			counts.upserts++
		}
	}
	return counts, p.reject(q, rejected)
}

// maxQuoted bounds a key value or reason quoted in a log line or message.
const maxQuoted = 256

// reject writes rejections to the dead-letter file, durably, or returns
// the error that halts the pipeline when the rule says on_reject: halt.
func (p *Pipeline) reject(q *tableQueue, rejected []replicator.Rejection) error {
	if q.route.Rule.OnReject == mapping.RejectHalt {
		return fmt.Errorf("target %s, table %s (from %s) rejected %d record(s) or value(s), e.g. %s; the mapping says on_reject: halt — fix the data or the target table, then restart",
			q.route.Target, q.spec.Table, q.spec.Source, len(rejected), describe(rejected[0]))
	}
	if err := p.deadLetters.Write(q.route.Target, q.spec, rejected); err != nil {
		return fmt.Errorf("pipeline: write dead letters: %w", err)
	}
	for _, r := range rejected {
		msg := "record rejected; written to the dead-letter file"
		if r.Column != "" {
			msg = "value rejected; the record was written without it and the value to the dead-letter file"
		}
		p.logger.Warn(msg, "target", q.route.Target, "table", q.spec.Table, "key", describeKey(r.Record.Key),
			"column", r.Column, "reason", replicator.Abbreviate(r.Reason, maxQuoted))
	}
	p.observer.DeadLettered(q.spec.Source, q.route.Target, q.spec.Table, len(rejected))
	return nil
}

// describe names a rejection's key and column and quotes its reason.
func describe(r replicator.Rejection) string {
	s := "key " + describeKey(r.Record.Key)
	if r.Column != "" {
		s += ", column " + r.Column
	}
	return s + ": " + replicator.Abbreviate(r.Reason, maxQuoted)
}

func describeKey(key []replicator.Field) string {
	s := ""
	for i, f := range key {
		if i > 0 {
			s += ","
		}
		s += f.Name + "=" + replicator.Abbreviate(string(f.Value.Raw), maxQuoted)
	}
	return s
}
