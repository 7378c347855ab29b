package apicall

import (
	"context"
	"sync"
	"time"

	"github.com/replicator-cdc/replicator/targets/backoff"
)

// downAfter is how many retryable failures in a row, with no other answer
// between, take the API for down. Every request of a credential goes to the
// same API, so when it is down the requests in flight (up to
// max_concurrent_requests) all fail within one attempt and the count is
// reached at once; a request the API keeps failing for reasons of its own
// while others are answered never reaches it, since each answer starts the
// count again. More than one, so that the few requests a dropped keep-alive
// connection breaks at once do not stop the others for a probe.
const downAfter = 3

// outage holds a client's requests back while its API is down. Without it
// every request in flight retried on its own backoff: a down API got one
// to two requests a second from one credential with nothing learnt from
// all but one of them, and with few requests in flight the API's return
// was noticed only when a backoff of up to RetryMax (30 s by default)
// ended. Instead, once the API is down, one request at a time (the one
// that has waited longest, so that a request failing for its own reasons
// cannot keep the turn) probes it on a backoff capped at ProbeMax, and
// the others wait for its answer without sending; any answer that is not a
// retryable failure shows the API is back and releases them all at once.
//
// While the API is up, a request that failed backs off on its own, and one
// that failed and then was applied ends every such backoff: the API is
// back. A request applied at its first attempt wakes nobody, so a request
// the API keeps failing for reasons of its own keeps its backoff while the
// others succeed.
type outage struct {
	probeMin, probeMax time.Duration
	// downs counts the client's outages on the target's gauge.
	downs func(delta float64)
	// log says when the API goes down and when it is back, once each.
	log func(down bool, since time.Time, last error)

	mu       sync.Mutex
	back     chan struct{} // closed and replaced when the API is known back
	moved    chan struct{} // closed and replaced when the probe turn may have moved
	failures int           // retryable failures in a row, no other answer between
	down     bool
	since    time.Time // when the API went down
	probing  bool      // a probe is in flight
	probes   int       // probes failed in this outage: the backoff's exponent
	next     time.Time // no probe leaves before this
	queue    []uint64  // the waiting requests' tickets, oldest first
	tickets  uint64
	failed   int   // probes failed in the client's life: waiters count theirs
	last     error // the last failure
}

func newOutage(probeMin, probeMax time.Duration, downs func(float64), log func(bool, time.Time, error)) *outage {
	return &outage{probeMin: probeMin, probeMax: probeMax, downs: downs, log: log,
		back: make(chan struct{}), moved: make(chan struct{})}
}

// turn is what admit lets a request do.
type turn struct {
	// probe: the request's attempt is the outage's probe, and its answer
	// must be told to answered (or abandon, when none comes).
	probe bool
	// failed is how many probes failed while the request waited: tries
	// of its own that the outage spared it, which count against its
	// MaxRetries; last is the last one's failure.
	failed int
	last   error
}

// admit returns when a request may send: at once while the API is up;
// while it is down, when the request has waited longest and the next probe
// is due, or when limit (> 0) probes failed while it waited. The error is
// ctx's.
func (o *outage) admit(ctx context.Context, limit int) (turn, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.down {
		return turn{}, nil
	}
	o.tickets++
	me, seen := o.tickets, o.failed
	o.queue = append(o.queue, me)
	defer o.leave(me)
	for {
		t := turn{failed: o.failed - seen, last: o.last}
		head := o.queue[0] == me
		switch {
		case !o.down, limit > 0 && t.failed >= limit:
			return t, nil
		case head && !o.probing && !time.Now().Before(o.next):
			o.probing = true
			t.probe = true
			return t, nil
		}
		wait := time.Duration(-1) // until the turn moves
		if head && !o.probing {
			wait = time.Until(o.next)
		}
		moved := o.moved
		o.mu.Unlock()
		err := waitFor(ctx, wait, moved)
		o.mu.Lock()
		if err != nil {
			return turn{}, err
		}
	}
}

// leave takes ticket me out of the queue; o.mu is held. When it was the
// head the turn moves to the next.
func (o *outage) leave(me uint64) {
	for i, t := range o.queue {
		if t == me {
			o.queue = append(o.queue[:i], o.queue[i+1:]...)
			if i == 0 {
				o.wake()
			}
			return
		}
	}
}

// wake tells the waiting requests that the turn may have moved; o.mu is
// held.
func (o *outage) wake() {
	close(o.moved)
	o.moved = make(chan struct{})
}

// mark is taken before an attempt: a backoff after it ends early when the
// API is known back after the attempt left.
func (o *outage) mark() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.back
}

// answered records an attempt's answer: failure is set for a retryable
// one; applied says a request that had failed before was applied now (the
// API is back). It returns whether the API is down, and if so how long
// until the next probe: the request then waits at admit, not on its own
// backoff.
func (o *outage) answered(t turn, failure error, applied bool) (down bool, probeIn time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if t.probe {
		o.probing = false
		o.wake()
	}
	if failure == nil {
		o.failures = 0
		if o.down {
			o.down = false
			o.downs(-1)
			o.log(false, o.since, o.last)
			applied = true
			o.wake()
		}
		if applied {
			close(o.back)
			o.back = make(chan struct{})
		}
		return false, 0
	}
	o.failures++
	o.last = failure
	switch {
	case !o.down && o.failures >= downAfter:
		o.down, o.since, o.probes = true, time.Now(), 0
		o.next = o.since.Add(backoff.Delay(o.probeMin, o.probeMax, 1))
		o.downs(1)
		o.log(true, o.since, failure)
	case o.down && t.probe:
		o.probes++
		o.failed++
		o.next = time.Now().Add(backoff.Delay(o.probeMin, o.probeMax, o.probes+1))
	}
	return o.down, time.Until(o.next)
}

// abandon ends a probe that got no answer (its context ended), so that
// the next request takes the turn.
func (o *outage) abandon() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.probing = false
	o.wake()
}
