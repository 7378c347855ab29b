package apicall

import (
	"context"
	"sync"
	"time"
)

// recovery ends the retry backoffs of a client's requests when the API
// is back: a request that failed (an error answer, a throttle, no answer)
// and then was applied proves it. Without it, after an outage every
// request in flight waits out its own backoff (up to RetryMax, 30 s by
// default) although the API answers again, and the writes that wait for
// those requests wait with them. A request applied at its first attempt
// wakes nobody: a request the API keeps failing for reasons of its own
// keeps its backoff while others succeed.
type recovery struct {
	mu   sync.Mutex
	back chan struct{} // closed and replaced when a failed request is applied
}

func newRecovery() *recovery { return &recovery{back: make(chan struct{})} }

// mark is taken before an attempt: the sleep after it ends early when a
// failed request is applied after the attempt left.
func (r *recovery) mark() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.back
}

// sleepUnlessBack waits d, or until back (a mark) closes, or until ctx
// ends and then returns its error.
func sleepUnlessBack(ctx context.Context, d time.Duration, back <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-back:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// recovered wakes every request sleeping in a backoff.
func (r *recovery) recovered() {
	r.mu.Lock()
	defer r.mu.Unlock()
	close(r.back)
	r.back = make(chan struct{})
}
