package apicall

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/replicator-cdc/replicator/targets/backoff"
)

// pacingSlack stretches the interval between requests by 2%: the server
// counts requests by arrival, and a request held up a few milliseconds on
// the way would otherwise put one request too many into the server's
// one-second window. The window counts arrivals exactly; the slack keeps
// the token bucket from releasing requests the window then holds back.
const pacingSlack = 1.02

// arrivalSlack widens the window by what a request may take from its
// headers leaving this process to the server counting it: a server's
// goroutine descheduled on a busy machine, or network jitter. Measured: on
// a loaded 2-core machine under -race a request arrived more than 20 ms
// after its write while the next arrived on time, and the server saw 11
// requests in one second.
const arrivalSlack = 50 * time.Millisecond

// Limiter is one credential's share of an API: the rate limit as the
// server counts it (at most the rate in any sliding second, by arrival),
// and the pause a throttling answer orders for the whole credential. Every
// request made with one credential (every table, the snapshot and the
// stream) must go through the same Limiter. Safe for concurrent use.
type Limiter struct {
	bucket *rate.Limiter // nil: no rate limit
	window *Window
	// turn lets one caller at a time wait for the bucket and the window,
	// so that a reservation is made only when its caller is running:
	// goroutines that reserved ahead and then all woke late from a stall
	// (GC, a busy machine) would otherwise arrive at the server together.
	// A channel, so that waiting for it can be cancelled.
	turn chan struct{}

	mu    sync.Mutex
	until time.Time // no request leaves before this (a throttling answer's reset)
}

// NewLimiter paces requests at perSecond (stretched by pacingSlack);
// perSecond <= 0 paces nothing and only honours pauses.
func NewLimiter(perSecond float64) *Limiter {
	l := &Limiter{window: NewWindow(0, 0), turn: make(chan struct{}, 1)}
	if perSecond > 0 {
		l.bucket = rate.NewLimiter(rate.Every(time.Duration(float64(time.Second)*pacingSlack/perSecond)), 1)
		n := max(1, int(perSecond))
		l.window = NewWindow(n, time.Duration(float64(n)*float64(time.Second)*pacingSlack/perSecond)+arrivalSlack)
	}
	return l
}

// Pause holds back every request of the credential for d from now, as a
// throttling answer asks; a shorter pause never cuts a longer one short.
func (l *Limiter) Pause(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := time.Now().Add(d); until.After(l.until) {
		l.until = until
	}
}

func (l *Limiter) pausedUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.until
}

// wait returns when a request may leave: no pause in force, a token from
// the bucket, and room in the window. The pause is checked again last, so
// that a request queued here (or at the bucket or window) when a
// throttling answer arrived does not leave before the reset. The ticket
// must stamp the request (Trace) and end with it (Done).
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
		if l.bucket != nil {
			if err := l.bucket.Wait(ctx); err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				// The bucket refuses early a wait that would outlast ctx.
				return nil, fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
			}
		}
		t, err := l.window.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		if !time.Now().Before(l.pausedUntil()) {
			return t, nil
		}
		t.cancel()
	}
}
