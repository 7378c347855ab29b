package pipeline

import "hash/maphash"

// concurrent is a writer that can take several requests at once; its
// answer bounds the Write calls in flight for all its tables together.
// Writers without it get one Write at a time per table.
type concurrent interface {
	MaxConcurrentRequests() int
}

// paced is a writer whose requests queue for a rate limit that all its
// tables share. Its slots are for requests awaiting an answer: a batch
// launched while requests already queue for leave to be sent would only
// queue too, frozen, while one still held takes in the records arriving
// meanwhile (dispatcher.add), so that under a load above the rate the
// rate carries more rows per request and a change waits behind fewer
// requests. Writers without it are launched into whenever a slot is free.
type paced interface {
	// Backlog is how many requests queue for leave to be sent, and a
	// channel closed once that may have changed.
	Backlog() (n int, changed <-chan struct{})
}

// maxBacklog is the backlog from which batches are held back: one
// request queued keeps the rate used while the next batch is launched
// after it leaves; a second one covers a batch of two requests.
const maxBacklog = 2

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
		// The dispatcher holds up to limit+1 batches of its own (work).
		q := &tableQueue{route: r, spec: r.Rule.Spec(), queue: make(chan *batch, max(1, queueDepth-limit-1))}
		p.queues[r.Rule] = q
		p.wg.Add(1)
		go p.work(q, slots[r.Target])
	}
}

// node is a batch the dispatcher holds, from the queue until written.
type node struct {
	b    *batch
	keys []uint64
	// deps counts the earlier batches, waiting or in flight, that share a
	// key with this one; it leaves when they are all written.
	deps     int
	later    []*node // the batches whose deps count this one
	launched bool
}

// dispatcher is one table's scheduling state, owned by its work goroutine.
type dispatcher struct {
	seed maphash.Seed
	// last is the latest batch, waiting or in flight, holding each key.
	// Keys are tracked by a 64-bit hash: a collision only makes two
	// batches wait for each other, and numbers are cheaper than strings.
	last    map[uint64]*node
	ready   []*node // nothing earlier shares a key: in queue order
	waiting int     // taken from the queue, not yet in flight
	running int
	barrier *node // an emptying of the table, waiting or in flight
	// rows and bytes bound a batch that others' records fill up.
	rows  int
	bytes int64
}

// work writes q's batches, several at a time. A batch leaves once every
// earlier batch sharing a key with it is written; a batch that waits so
// does not hold back later batches of other keys. So two changes of one
// key are never in flight together and land in commit order (design
// invariant 2), while batches of different keys share the latency of the
// target's answers, also after an outage when a backlog of updates of
// rows inserted just before arrives. Confirmation order does not matter:
// the tracker acknowledges only the contiguous prefix of confirmed units
// (invariant 1).
func (p *Pipeline) work(q *tableQueue, slots chan struct{}) {
	defer p.wg.Done()
	d := &dispatcher{seed: maphash.MakeSeed(), last: make(map[uint64]*node), rows: p.opts.BatchRows, bytes: p.opts.BatchBytes}
	finished := make(chan *node, cap(slots))
	defer func() {
		for ; d.running > 0; d.finish(<-finished) {
		}
	}()
	pace, _ := q.route.Writer.(paced)
	// arrived is the backlog's signal as of the last launch: until it
	// fires, that batch may not have reached the limiter yet, and the
	// backlog would not show it. Waiting for it launches one batch per
	// table when the backlog drains, so tables sharing a limiter take
	// turns, as they do at the slots.
	var arrived <-chan struct{}
	queue := q.queue
	// The batches held waiting: enough to find key-disjoint ones for every
	// slot of the target and to take the next batch into a waiting one,
	// without taking the whole queue into memory.
	lookahead := cap(slots) + 1
	for p.ctx.Err() == nil {
		// Emptying a table (on_truncate: empty) is a barrier: it waits
		// for every batch before it and holds back every batch after it.
		in := queue
		if d.barrier != nil || d.waiting >= lookahead {
			in = nil
		}
		var next *node
		out := slots
		switch {
		case len(d.ready) > 0:
			next = d.ready[0]
		case d.barrier != nil && d.waiting == 1 && d.running == 0:
			next = d.barrier
		default:
			out = nil
		}
		var drained <-chan struct{}
		if out != nil && pace != nil {
			select {
			case <-arrived:
				arrived = nil
			default:
			}
			if n, changed := pace.Backlog(); n >= maxBacklog || arrived != nil {
				out, drained = nil, changed
			}
		}
		if queue == nil && d.waiting == 0 && d.running == 0 {
			return // the queue is closed and nothing is left to write
		}
		select {
		case b, ok := <-in:
			if !ok {
				queue = nil
				continue
			}
			if done := d.add(b); done != nil {
				// Every record joined an earlier batch: its units are
				// counted there too, and it confirms its share now.
				p.write(q, done.b)
			}
		case out <- struct{}{}:
			d.launch(next)
			if pace != nil {
				_, arrived = pace.Backlog()
			}
			go func() {
				p.write(q, next.b)
				// The slot goes back at once, not when this table's
				// dispatcher next looks: it may wait for a batch for
				// long, and the target's other tables need the slot.
				<-slots
				finished <- next
			}()
		case n := <-finished:
			d.finish(n)
			arrived = nil
		case <-drained:
		case <-p.ctx.Done():
		}
	}
}

// add takes a batch from the queue: it waits for the latest earlier batch
// holding each of its keys. Where that batch has not left yet, the record
// joins it instead (coalesced, as within a batch): a key changed in every
// transaction would otherwise chain every batch to the one before and
// leave one request in flight at a time. A record of a key no batch holds
// fills up the last batch ready to leave: the quota counts requests, and
// batches thinned by those moves would otherwise spend it on fewer rows.
// It returns n when nothing is left in it to write.
func (d *dispatcher) add(b *batch) (n *node) {
	n = &node{b: b}
	d.waiting++
	if b.empty {
		d.barrier = n
		return nil
	}
	n.keys = make([]uint64, 0, len(b.records))
	// Backwards, so that a record moved out (swapped with the last one)
	// leaves the records still to visit where they are.
	for i := len(b.records) - 1; i >= 0; i-- {
		h := maphash.String(d.seed, b.keys[i])
		prev := d.last[h]
		if prev != nil && !prev.launched && prev.b.holds(b.keys[i]) {
			prev.b.take(b, i)
			continue
		}
		if r := d.room(); prev == nil && r != nil {
			r.b.take(b, i)
			r.keys = append(r.keys, h)
			d.last[h] = r
			continue
		}
		n.keys = append(n.keys, h)
		if prev != nil && (len(prev.later) == 0 || prev.later[len(prev.later)-1] != n) {
			prev.later = append(prev.later, n)
			n.deps++
		}
		d.last[h] = n
	}
	if len(b.records) == 0 {
		d.waiting--
		return n
	}
	if n.deps == 0 {
		d.ready = append(d.ready, n)
	}
	return nil
}

// room is the last batch ready to leave when it can take another record.
func (d *dispatcher) room() *node {
	if len(d.ready) == 0 {
		return nil
	}
	r := d.ready[len(d.ready)-1]
	if len(r.b.records) >= d.rows || r.b.bytes >= d.bytes {
		return nil
	}
	return r
}

// launch marks n in flight.
func (d *dispatcher) launch(n *node) {
	n.launched = true
	d.waiting--
	d.running++
	if n != d.barrier {
		d.ready[0] = nil
		d.ready = d.ready[1:]
	}
}

// finish settles a written batch and readies the batches that waited for it.
func (d *dispatcher) finish(n *node) {
	d.running--
	if n == d.barrier {
		d.barrier = nil
		return
	}
	for _, k := range n.keys {
		if d.last[k] == n {
			delete(d.last, k)
		}
	}
	for _, l := range n.later {
		if l.deps--; l.deps == 0 {
			d.ready = append(d.ready, l)
		}
	}
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
