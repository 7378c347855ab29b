package feishufake

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/replicator-cdc/replicator/targets/internal/fakekit"
)

// Fault is a failure the server can inject into a request.
type Fault int

const (
	// FaultNone answers normally.
	FaultNone Fault = iota
	// FaultServerError answers HTTP 500 without applying anything.
	FaultServerError
	// FaultSlow waits Options.SlowDelay before answering; if the client has
	// gone by then, nothing is applied.
	FaultSlow
	// FaultDrop closes the connection without applying or answering.
	FaultDrop
	// FaultLostAnswer applies the request, then closes the connection
	// without answering.
	FaultLostAnswer
	// FaultThrottle answers HTTP 429 with code 99991400 and a reset header
	// of Options.ThrottleReset seconds.
	FaultThrottle
	// FaultThrottleLate is FaultThrottle answered only once the next
	// request has arrived (or after Options.SlowDelay): the answer goes
	// out right after an arrival, so that no request of a client pacing
	// its requests can be on its way when it does, and a request arriving
	// before the reset is one the client sent after it knew.
	FaultThrottleLate
)

var faultNames = [...]string{"none", "server_error", "slow", "drop", "lost_answer", "throttle", "throttle_late"}

func (f Fault) String() string {
	if f >= 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return "unknown"
}

// InjectFaults queues faults for the next record writes (POST and DELETE of
// records), one per request, in order, ahead of any random fault.
func (s *Server) InjectFaults(faults ...Fault) { s.faults.Queue(faults...) }

// InjectTokenFaults queues faults for the next calls of the OAuth token
// endpoint. FaultLostAnswer there rotates the refresh token and drops the
// answer: the client's refresh token is spent and it never sees the new one.
func (s *Server) InjectTokenFaults(faults ...Fault) { s.tokenFaults.Queue(faults...) }

// SetFaultRate makes each record write fail with probability p, with a fault
// drawn uniformly from kinds by the seeded generator. p = 0 turns it off.
func (s *Server) SetFaultRate(p float64, kinds ...Fault) { s.faults.SetRate(p, kinds...) }

// tableFault is a table answering as if missing for its next left calls.
type tableFault struct {
	left int
	msg  string
}

// FailTable makes the next n calls naming table (schema reads, record reads
// and writes) answer HTTP 400 with code 2320001 and msg, the way the API
// answers while a table is renamed, dropped or refused to the app; msg ""
// answers the bare "param is invalid". Nothing of those calls is applied.
func (s *Server) FailTable(table string, n int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tableFaults == nil {
		s.tableFaults = make(map[string]tableFault)
	}
	if msg == "" {
		msg = "param is invalid"
	}
	s.tableFaults[table] = tableFault{left: n, msg: msg}
}

// tableFailure takes one call from the table's FailTable count.
func (s *Server) tableFailure(table string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.tableFaults[table]
	if !ok || f.left <= 0 {
		return "", false
	}
	f.left--
	s.tableFaults[table] = f
	return f.msg, true
}

type handler func(w http.ResponseWriter, r *http.Request, table string)

// withFaults runs h under fault f.
func (s *Server) withFaults(w http.ResponseWriter, r *http.Request, table string, f Fault, h handler) {
	if f == FaultNone {
		h(w, r, table)
		return
	}
	info(r).fault = f
	switch f {
	case FaultServerError:
		s.answer(w, r, table, 0, http.StatusInternalServerError, 500, "internal server error", nil)
	case FaultThrottle:
		s.throttle(w, r, table, s.opts.ThrottleReset)
	case FaultThrottleLate:
		s.srv.AwaitArrival(s.opts.SlowDelay)
		s.throttle(w, r, table, s.opts.ThrottleReset)
	case FaultDrop:
		s.record(r, table, 0, 0, 0)
		fakekit.HangUp(w)
	case FaultLostAnswer:
		h(httptest.NewRecorder(), r, table)
		fakekit.HangUp(w)
	case FaultSlow:
		if !s.slow(r) {
			s.record(r, table, 0, 0, 0)
			return
		}
		h(w, r, table)
	}
}

// slow waits Options.SlowDelay and reports whether the client is still
// there. The body is read first because the server notices a client that
// hangs up only once the body is consumed.
func (s *Server) slow(r *http.Request) bool {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes))
	r.Body = io.NopCloser(bytes.NewReader(body))
	return s.srv.Sleep(r.Context(), s.opts.SlowDelay)
}
