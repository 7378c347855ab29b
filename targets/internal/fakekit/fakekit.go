// Package fakekit is what the target fakes share: the loopback HTTP server
// and its shutdown, the request log, fault injection and the rate limit of
// the real services, and the counts tests take from arrival times of how
// well a client kept to the quota. Each fake keeps only its API's answers.
package fakekit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"
)

// Handler answers one request. arrived is when it came, taken before any
// answer waiting for the next arrival (Server.AwaitArrival) hears of it, so
// that such an answer is always decided after the arrival it waited for.
type Handler func(w http.ResponseWriter, r *http.Request, arrived time.Time)

// Server is a fake's loopback HTTP server. Its methods are safe for
// concurrent use.
type Server struct {
	ts        *httptest.Server
	closing   chan struct{}
	closeOnce sync.Once
	arrivals  arrivals
}

// Start serves h on a loopback port.
func Start(h Handler) *Server {
	s := &Server{closing: make(chan struct{})}
	s.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived := time.Now()
		s.arrivals.arrived()
		h(w, r, arrived)
	}))
	return s
}

// URL is the server's base URL.
func (s *Server) URL() string { return s.ts.URL }

// Close stops the server, cutting short any answer waiting in Sleep or
// AwaitArrival.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.ts.CloseClientConnections()
	s.ts.Close()
}

// Sleep waits d and reports whether the client of ctx (a request's context)
// is still there. A server notices a client that hangs up only once the
// request body has been read.
func (s *Server) Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return ctx.Err() == nil
	case <-ctx.Done():
	case <-s.closing:
	}
	return false
}

// AwaitArrival returns once the next request has arrived, after at most d,
// or when the server closes.
func (s *Server) AwaitArrival(d time.Duration) {
	s.arrivals.wait(d, s.closing)
}

// Log is the log of answered requests. The zero value is ready to use.
type Log[R any] struct {
	mu   sync.Mutex
	reqs []R
}

// Add appends one answered request.
func (l *Log[R]) Add(r R) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, r)
}

// All returns the log so far, in the order the requests were added.
func (l *Log[R]) All() []R {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs)
}
