package gptbotsfake

import (
	"time"

	"github.com/replicator-cdc/replicator/targets/internal/fakekit"
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
	s.log.Add(*call)
}

// Requests returns the log so far, in the order the answers were decided.
func (s *Server) Requests() []Request { return s.log.All() }

// MaxPerWindow is the largest number of the given requests that arrived
// within any window of length d (a half-open interval (t-d, t]), the measure
// the rate limit enforces.
func MaxPerWindow(reqs []Request, d time.Duration) int {
	return fakekit.MaxPerWindow(reqs, func(r Request) time.Time { return r.Time }, d)
}

// EarlyAfterThrottle returns the given requests that arrived after a
// throttling answer among them was given and before the reset it named
// (see fakekit.Early).
func EarlyAfterThrottle(reqs []Request) []Request {
	return fakekit.Early(reqs, func(r Request) (time.Time, time.Time, time.Duration) { return r.Time, r.Answered, r.Reset })
}
