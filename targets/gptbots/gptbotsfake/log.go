package gptbotsfake

import (
	"slices"
	"time"

	"github.com/replicator-cdc/replicator/targets/internal/fakequota"
)

// Request is one logged call.
type Request struct {
	// Time is when the request arrived.
	Time time.Time
	Path string
	// Table is the table id the call named, when it got that far.
	Table string
	// Items is the number of update or delete items the call carried, or
	// the records a page read returned.
	Items int
	// Bytes is the size of the request body.
	Bytes int
	// Status is the HTTP status answered, 0 when the connection was dropped
	// or the client left.
	Status int
	// Code is the body code answered: 0 for success.
	Code  int
	Fault Fault
	// Answered is when the answer was decided; Reset is the Retry-After a
	// throttling answer named (0 for any other answer).
	Answered time.Time
	Reset    time.Duration
}

func (s *Server) record(call *Request) {
	call.Answered = time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, *call)
}

// Requests returns the log so far, in the order the answers were decided.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// MaxPerWindow is the largest number of the given requests that arrived
// within any window of length d (a half-open interval (t-d, t]), the measure
// the rate limit enforces.
func MaxPerWindow(reqs []Request, d time.Duration) int {
	times := make([]time.Time, len(reqs))
	for i, r := range reqs {
		times[i] = r.Time
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

// EarlyAfterThrottle returns the given requests that arrived after a
// throttling answer among them was given and before the reset it named
// (see fakequota.Early).
func EarlyAfterThrottle(reqs []Request) []Request {
	return fakequota.Early(reqs, func(r Request) (time.Time, time.Time, time.Duration) { return r.Time, r.Answered, r.Reset })
}

// window is a sliding one-second log of admitted requests.
type window struct {
	times []time.Time
}

// admit records a request arriving at now unless limit requests were already
// admitted in the second before it. A negative limit admits everything.
func (w *window) admit(now time.Time, limit int) bool {
	if limit < 0 {
		return true
	}
	cut := now.Add(-time.Second)
	n := 0
	for n < len(w.times) && !w.times[n].After(cut) {
		n++
	}
	w.times = w.times[n:]
	if len(w.times) >= limit {
		return false
	}
	// Arrival times are taken before the lock, so they can come slightly out
	// of order.
	i, _ := slices.BinarySearchFunc(w.times, now, time.Time.Compare)
	w.times = slices.Insert(w.times, i, now)
	return true
}
