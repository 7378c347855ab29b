package fakekit

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Faults draws the fault each request is to suffer: the queued ones first,
// in order, then at random at a set rate. F is the fake's fault type, whose
// zero value answers normally. Its methods are safe for concurrent use.
type Faults[F any] struct {
	mu    sync.Mutex
	queue []F
	rate  float64
	kinds []F
	rng   *rand.Rand
}

// NewFaults returns Faults drawing from a generator seeded with seed, which
// also draws the fake's jitter (Delay), so that one seed repeats a run.
func NewFaults[F any](seed uint64) *Faults[F] {
	return &Faults[F]{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Queue queues faults for the next requests, one per request, ahead of any
// random fault.
func (f *Faults[F]) Queue(faults ...F) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append(f.queue, faults...)
}

// SetRate makes each request fail with probability p, with a fault drawn
// uniformly from kinds. p = 0 turns it off.
func (f *Faults[F]) SetRate(p float64, kinds ...F) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rate = p
	f.kinds = append([]F(nil), kinds...)
}

// Next returns the fault of the next request: the zero F for none.
func (f *Faults[F]) Next() F {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queue) > 0 {
		next := f.queue[0]
		f.queue = f.queue[1:]
		return next
	}
	if f.rate > 0 && len(f.kinds) > 0 && f.rng.Float64() < f.rate {
		return f.kinds[f.rng.IntN(len(f.kinds))]
	}
	var none F
	return none
}

// Delay is latency plus a random share of jitter: how long a write waits
// before the fake applies it, as the real API's answers take a while; with
// jitter, requests sent in one order may be applied in another.
func (f *Faults[F]) Delay(latency, jitter time.Duration) time.Duration {
	if jitter <= 0 {
		return latency
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return latency + time.Duration(f.rng.Int64N(int64(jitter)))
}

// HangUp closes the connection without an answer.
func HangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
