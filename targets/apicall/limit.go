package apicall

import (
	"context"
	"sync"
	"time"

	"github.com/replicator-cdc/replicator/targets/backoff"
)

// arrivalSlack widens the window by what a request may take from being
// written to the server counting it, beyond a stall of this process (the
// Window watches for those): network jitter, or a server's goroutine
// scheduled late. Measured against the loopback fakes on a loaded 2-core
// machine (the quota benchmark's spread): 99% within 3 ms, the largest
// 18 ms. It is where the slack starts: a throttling answer shows the
// server's arrivals spread more than that, and each one doubles the slack,
// up to maxArrivalSlack; after narrowAfter windows' worth of requests with
// no throttling answer it halves again, down to arrivalSlack. A 429 costs
// its whole reset (a second of Feishu's quota), so a path with more jitter
// than a loopback is better paced a little slower than throttled again.
const (
	arrivalSlack    = 25 * time.Millisecond
	maxArrivalSlack = 400 * time.Millisecond
	narrowAfter     = 100
)

// Limiter is one credential's share of an API: the rate limit as the
// server counts it (at most the rate in any sliding second, by arrival),
// and the pause a throttling answer orders for the whole credential. Every
// request made with one credential (every table, the snapshot and the
// stream) must go through the same Limiter. Safe for concurrent use.
type Limiter struct {
	window *Window
	// turn lets one caller at a time wait for its slot and the window,
	// so that a reservation is made only when its caller is running:
	// goroutines that reserved ahead and then all woke late from a stall
	// (GC, a busy machine) would otherwise arrive at the server together.
	// A channel, so that waiting for it can be cancelled.
	turn chan struct{}
	next time.Time // the next release's slot; held by turn

	// mu holds the pause, and the slack with the spacing it gives:
	// interval spaces releases evenly at the window's rate, so that the
	// server sees a steady stream rather than bursts; 0: no rate limit.
	mu       sync.Mutex
	interval time.Duration
	until    time.Time // no request leaves before this (a throttling answer's reset)
	n        int       // requests per window; 0: no rate limit
	base     time.Duration
	slack    time.Duration // the arrival slack in force
	quiet    int           // requests released since the slack last changed
}

// NewLimiter paces requests at perSecond, less the arrival slack;
// perSecond <= 0 paces nothing and only honours pauses.
func NewLimiter(perSecond float64) *Limiter {
	l := &Limiter{window: NewWindow(0, 0), turn: make(chan struct{}, 1)}
	if perSecond > 0 {
		l.n = max(1, int(perSecond))
		l.base = time.Duration(float64(l.n) * float64(time.Second) / perSecond)
		l.window = NewWindow(l.n, l.base)
		l.setSlack(arrivalSlack)
	}
	return l
}

// Close stops what the Limiter runs in the background (the window's stall
// watcher) and waits for it; its owner calls it once no request of the
// credential is made any more.
func (l *Limiter) Close() { l.window.Close() }

// Pause holds back every request of the credential for d from now, as a
// throttling answer asks; a shorter pause never cuts a longer one short.
// The answer also widens the arrival slack (see arrivalSlack).
func (l *Limiter) Pause(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := time.Now().Add(d); until.After(l.until) {
		l.until = until
	}
	if l.n > 0 {
		l.setSlack(min(2*l.slack, maxArrivalSlack))
	}
}

// setSlack widens the window to the base plus slack and spaces the slots
// evenly within it; l.mu is held, or l is not shared yet.
func (l *Limiter) setSlack(slack time.Duration) {
	l.slack, l.quiet = slack, 0
	w := l.base + slack
	l.window.resize(w)
	l.interval = w / time.Duration(l.n)
}

// released counts a request let go, and narrows the slack after a quiet
// spell; it returns the slot interval in force.
func (l *Limiter) released() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 {
		return 0
	}
	if l.quiet++; l.quiet >= narrowAfter*l.n && l.slack > arrivalSlack {
		l.setSlack(max(l.slack/2, arrivalSlack))
	}
	return l.interval
}

func (l *Limiter) slotInterval() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.interval
}

func (l *Limiter) pausedUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.until
}

// wait returns when a request may leave: no pause in force, its slot
// come, and room in the window. The pause is checked again last, so
// that a request queued here (or at the window) when a throttling answer
// arrived does not leave before the reset. The ticket must stamp the
// request (Trace) and end with it (Done).
func (l *Limiter) wait(ctx context.Context) (*Ticket, error) {
	select {
	case l.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-l.turn }()
	for {
		if err := backoff.Sleep(ctx, time.Until(l.pausedUntil())); err != nil {
			return nil, err
		}
		// Slots follow one another by interval from where the stream
		// began, so a late wake-up is made up by the next release instead
		// of adding up; an idle spell saves up at most half an interval.
		interval := l.slotInterval()
		slot := l.next
		if floor := time.Now().Add(-interval / 2); slot.Before(floor) {
			slot = floor
		}
		if err := backoff.Sleep(ctx, time.Until(slot)); err != nil {
			return nil, err
		}
		t, err := l.window.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		if !time.Now().Before(l.pausedUntil()) {
			l.next = slot.Add(l.released())
			return t, nil
		}
		t.cancel()
	}
}
