// Package fakequota is what the target fakes share to hold a client to an
// API's quota as the real services do, and to count from arrival times how
// well it kept to it.
package fakequota

import (
	"sync"
	"time"
)

// Arrivals tells a waiting handler when the next request has arrived. The
// zero value is ready to use.
type Arrivals struct {
	mu   sync.Mutex
	next chan struct{} // closed when a request arrives
}

func (a *Arrivals) chanLocked() chan struct{} {
	if a.next == nil {
		a.next = make(chan struct{})
	}
	return a.next
}

// Arrived is called as each request arrives.
func (a *Arrivals) Arrived() {
	a.mu.Lock()
	defer a.mu.Unlock()
	close(a.chanLocked())
	a.next = make(chan struct{})
}

// Wait returns once the next request has arrived, after at most d, or when
// stop is closed.
func (a *Arrivals) Wait(d time.Duration, stop <-chan struct{}) {
	a.mu.Lock()
	next := a.chanLocked()
	a.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-next:
	case <-t.C:
	case <-stop:
	}
}

// Early returns the requests that arrived after a throttling answer among
// them was given and before the reset it named: requests the real API would
// refuse again, and a client that honours the reset never sends. times
// reads a request's arrival, when it was answered, and the reset its answer
// named (0 for an answer that is not a throttling one). A request already
// on its way when the answer went out counts too, so a test must keep that
// from happening (the fakes' FaultThrottleLate).
func Early[R any](reqs []R, times func(R) (arrived, answered time.Time, reset time.Duration)) []R {
	var early []R
	for _, t := range reqs {
		_, answered, reset := times(t)
		if reset <= 0 {
			continue
		}
		until := answered.Add(reset)
		for _, r := range reqs {
			if arrived, _, _ := times(r); arrived.After(answered) && arrived.Before(until) {
				early = append(early, r)
			}
		}
	}
	return early
}
