package pipeline

import "hash/maphash"

// concurrent is a writer that can take several requests at once; its
// answer bounds the Write calls in flight for all its tables together.
// Writers without it get one Write at a time per table.
type concurrent interface {
	MaxConcurrentRequests() int
}

// start launches one dispatcher per route. Routes of one target share a
// pool of slots, so that the target's bound holds across its tables.
func (p *Pipeline) start(routes []Route) {
	slots := make(map[string]chan struct{})
	for _, r := range routes {
		limit := 1
		if c, ok := r.Writer.(concurrent); ok {
			limit = max(1, c.MaxConcurrentRequests())
		}
		if slots[r.Target] == nil {
			slots[r.Target] = make(chan struct{}, limit)
		}
		q := &tableQueue{route: r, spec: r.Rule.Spec(), queue: make(chan *batch, queueDepth)}
		p.queues[r.Rule] = q
		p.wg.Add(1)
		go p.work(q, slots[r.Target])
	}
}

// work writes q's batches, several at a time, in queue order: a batch
// leaves only when none of its keys is in a batch still in flight, and
// nothing overtakes it meanwhile. So two changes of one key are never in
// flight together and land in commit order (design invariant 2), while
// batches of different keys share the latency of the target's answers.
// Confirmation order does not matter: the tracker acknowledges only the
// contiguous prefix of confirmed units (invariant 1).
func (p *Pipeline) work(q *tableQueue, slots chan struct{}) {
	defer p.wg.Done()
	// Keys are tracked by a 64-bit hash: a collision only makes two
	// batches wait for each other, and numbers are cheaper to count than
	// strings.
	seed := maphash.MakeSeed()
	inFlight := make(map[uint64]int32)
	finished := make(chan []uint64, cap(slots)) // the keys of a written batch
	running := 0
	settle := func(keys []uint64) {
		for _, k := range keys {
			if inFlight[k]--; inFlight[k] == 0 {
				delete(inFlight, k)
			}
		}
		running--
	}
	defer func() {
		for ; running > 0; settle(<-finished) {
		}
	}()
	for b := range q.queue {
		keys := make([]uint64, 0, len(b.index))
		for k := range b.index {
			keys = append(keys, maphash.String(seed, k))
		}
		// Emptying a table (on_truncate: empty) is a barrier: it waits
		// for every batch before it and holds back every batch after it.
		for running > 0 && (b.empty || overlaps(keys, inFlight)) {
			settle(<-finished)
		}
		if !p.acquire(slots, finished, settle) {
			continue
		}
		for _, k := range keys {
			inFlight[k]++
		}
		running++
		go func() {
			p.write(q, b)
			// The slot goes back at once, not when this table's
			// dispatcher next looks: it may wait for a batch for long,
			// and the target's other tables need the slot meanwhile.
			<-slots
			finished <- keys
		}()
		for b.empty && running > 0 {
			settle(<-finished)
		}
	}
}

// acquire takes a slot of the target, settling finished batches while it
// waits; it fails once the pipeline stops.
func (p *Pipeline) acquire(slots chan struct{}, finished chan []uint64, settle func([]uint64)) bool {
	for {
		if p.ctx.Err() != nil {
			return false
		}
		select {
		case slots <- struct{}{}:
			return true
		case keys := <-finished:
			settle(keys)
		case <-p.ctx.Done():
			return false
		}
	}
}

func overlaps(keys []uint64, inFlight map[uint64]int32) bool {
	if len(inFlight) == 0 {
		return false
	}
	for _, k := range keys {
		if _, ok := inFlight[k]; ok {
			return true
		}
	}
	return false
}

// write applies one batch and confirms it, or fails the pipeline.
func (p *Pipeline) write(q *tableQueue, b *batch) {
	rejected, err := p.apply(q, b)
	if err != nil {
		p.observer.Error(q.spec.Source, err)
		p.fail(err)
		return
	}
	b.confirm()
	p.budget.release(b.bytes)
	upserts, deletes := b.counts()
	p.observer.Confirmed(q.spec.Source, q.route.Target, q.spec.Table, upserts-rejected.upserts, deletes-rejected.deletes)
	p.observer.InFlight(p.budget.inUse())
}
