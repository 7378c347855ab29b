package feishufake

import (
	"net/http"
	"net/url"
	"time"

	"github.com/replicator-cdc/replicator/targets/internal/fakekit"
)

// Request is one logged call.
type Request struct {
	// Time is when the request arrived.
	Time   time.Time
	Method string
	// Path is the URL path; Query its decoded query.
	Path  string
	Query url.Values
	Table string
	// Rows is the number of rows a POST carried or a DELETE removed.
	Rows int
	// Status is the HTTP status answered, 0 when the connection was dropped
	// or the client left.
	Status int
	// Code is the envelope code answered.
	Code  int
	Fault Fault
	// Answered is when the answer was decided; Reset is the wait a
	// throttling answer named (0 for any other answer).
	Answered time.Time
	Reset    time.Duration
}

type infoKey struct{}

type requestInfo struct {
	arrived time.Time
	fault   Fault
	reset   time.Duration
}

func info(r *http.Request) *requestInfo {
	return r.Context().Value(infoKey{}).(*requestInfo)
}

func (s *Server) record(r *http.Request, table string, rows, status, code int) {
	in := info(r)
	s.log.Add(Request{
		Time: in.arrived, Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Table: table,
		Rows: rows, Status: status, Code: code, Fault: in.fault, Answered: time.Now(), Reset: in.reset,
	})
}

// Requests returns the log so far, in the order the answers were decided.
func (s *Server) Requests() []Request { return s.log.All() }

// MaxPerWindow is the largest number of the given requests that arrived
// within any window of length d (a half-open interval (t-d, t]), the measure
// the rate limiter enforces.
func MaxPerWindow(reqs []Request, d time.Duration) int {
	return fakekit.MaxPerWindow(reqs, func(r Request) time.Time { return r.Time }, d)
}

// EarlyAfterThrottle returns the given requests that arrived after a
// throttling answer among them was given and before the reset it named
// (see fakekit.Early).
func EarlyAfterThrottle(reqs []Request) []Request {
	return fakekit.Early(reqs, func(r Request) (time.Time, time.Time, time.Duration) { return r.Time, r.Answered, r.Reset })
}
