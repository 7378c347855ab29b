// Package backoff is the wait between attempts that every target client
// uses, so that a fix to it reaches all of them.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delay is exponential with jitter: uniform in [d/2, d] for
// d = min(hi, lo·2^(n-1)), n counting from 1. The jitter keeps clients
// waiting on one failure from returning in step; the floor keeps a wait
// from collapsing to nothing.
func Delay(lo, hi time.Duration, n int) time.Duration {
	d := hi
	if n < 32 {
		d = min(hi, lo<<(max(n, 1)-1))
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// Sleep waits d, or until ctx ends and then returns its error.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
