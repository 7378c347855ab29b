package fakekit

import (
	"slices"
	"sync"
	"time"
)

// arrivals tells a waiting handler when the next request has arrived. The
// zero value is ready to use.
type arrivals struct {
	mu   sync.Mutex
	next chan struct{} // closed when a request arrives
}

func (a *arrivals) chanLocked() chan struct{} {
	if a.next == nil {
		a.next = make(chan struct{})
	}
	return a.next
}

// arrived is called as each request arrives.
func (a *arrivals) arrived() {
	a.mu.Lock()
	defer a.mu.Unlock()
	close(a.chanLocked())
	a.next = make(chan struct{})
}

// wait returns once the next request has arrived, after at most d, or when
// stop is closed.
func (a *arrivals) wait(d time.Duration, stop <-chan struct{}) {
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

// MaxPerWindow is the largest number of the given requests that arrived
// within any window of length d (a half-open interval (t-d, t]), the measure
// a Window enforces. arrived reads a request's arrival.
func MaxPerWindow[R any](reqs []R, arrived func(R) time.Time, d time.Duration) int {
	times := make([]time.Time, len(reqs))
	for i, r := range reqs {
		times[i] = arrived(r)
	}
	slices.SortFunc(times, time.Time.Compare)
	best, lo := 0, 0
	for hi, t := range times {
		for !times[lo].After(t.Add(-d)) {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// Window is a sliding one-second log of admitted requests, the rate limit
// of both APIs. The zero value is ready to use.
type Window struct {
	mu    sync.Mutex
	times []time.Time
}

// Admit records a request arriving at now unless limit requests were already
// admitted in the second before it; then it says how long until the oldest
// of them leaves the window. A negative limit admits everything.
func (w *Window) Admit(now time.Time, limit int) (wait time.Duration, admitted bool) {
	if limit < 0 {
		return 0, true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	cut := now.Add(-time.Second)
	n := 0
	for n < len(w.times) && !w.times[n].After(cut) {
		n++
	}
	w.times = w.times[n:]
	if len(w.times) >= limit {
		return w.times[0].Sub(cut), false
	}
	// Arrival times are taken before this lock, so they can come slightly
	// out of order.
	i, _ := slices.BinarySearchFunc(w.times, now, time.Time.Compare)
	w.times = slices.Insert(w.times, i, now)
	return 0, true
}
