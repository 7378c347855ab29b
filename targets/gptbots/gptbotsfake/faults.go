package gptbotsfake

import (
	"math/rand/v2"
	"net/http"
	"time"
)

// Fault is a failure the server can inject into a call.
type Fault int

const (
	// FaultNone answers normally.
	FaultNone Fault = iota
	// FaultServerError answers code 50000 (HTTP 500 unless
	// Options.CodedErrorsAsOK) without applying anything.
	FaultServerError
	// FaultBadGateway answers HTTP 502 with an HTML body, as a proxy in
	// front of the API would, without applying anything.
	FaultBadGateway
	// FaultSlow waits Options.SlowDelay before answering; if the client has
	// gone by then, nothing is applied.
	FaultSlow
	// FaultDrop closes the connection without applying or answering.
	FaultDrop
	// FaultLostAnswer applies the call, then closes the connection without
	// answering.
	FaultLostAnswer
	// FaultThrottle answers HTTP 429 as if past the rate limit.
	FaultThrottle
	// FaultInvalid answers 40000 (invalid parameter) without applying
	// anything, as a gateway or a table in flux may for any request.
	FaultInvalid
	// FaultTableNotFound answers 403106 without applying anything, as
	// while a table is being re-created.
	FaultTableNotFound
	// FaultThrottleLate is FaultThrottle answered only once the next call
	// has arrived (or after Options.SlowDelay): the answer goes out right
	// after an arrival, so that no call of a client pacing its calls can
	// be on its way when it does, and a call arriving before the
	// Retry-After is one the client sent after it knew.
	FaultThrottleLate
)

var faultNames = [...]string{"none", "server_error", "bad_gateway", "slow", "drop", "lost_answer", "throttle", "invalid", "table_not_found", "throttle_late"}

func (f Fault) String() string {
	if f >= 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return "unknown"
}

type faultState struct {
	queue []Fault
	rate  float64
	kinds []Fault
	rng   *rand.Rand
}

// InjectFaults queues faults for the next calls that pass auth and the rate
// limit, one per call, in order, ahead of any random fault.
func (s *Server) InjectFaults(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.queue = append(s.faults.queue, faults...)
}

// SetFaultRate makes each call fail with probability p, with a fault drawn
// uniformly from kinds by the seeded generator. p = 0 turns it off.
func (s *Server) SetFaultRate(p float64, kinds ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.rate = p
	s.faults.kinds = append([]Fault(nil), kinds...)
}

func (s *Server) nextFault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &s.faults
	if len(f.queue) > 0 {
		next := f.queue[0]
		f.queue = f.queue[1:]
		return next
	}
	if f.rate > 0 && len(f.kinds) > 0 && f.rng.Float64() < f.rate {
		return f.kinds[f.rng.IntN(len(f.kinds))]
	}
	return FaultNone
}

// withFault answers the call, whose effect h computes, under fault f.
func (s *Server) withFault(w http.ResponseWriter, r *http.Request, call *Request, f Fault, h func() answer) {
	call.Fault = f
	switch f {
	case FaultNone:
		if d := s.latency(); d > 0 && r.URL.Path != PagePath && !s.sleep(r, d) {
			s.record(call)
			return
		}
		s.write(w, call, h())
	case FaultServerError:
		s.write(w, call, s.coded(CodeInternal, "", "internal error"))
	case FaultBadGateway:
		call.Status = http.StatusBadGateway
		s.record(call)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html><body>502 Bad Gateway</body></html>"))
	case FaultThrottle:
		s.throttle(w, call)
	case FaultThrottleLate:
		s.arrivals.Wait(s.opts.SlowDelay, s.closing)
		s.throttle(w, call)
	case FaultInvalid:
		s.write(w, call, s.invalid("", "invalid parameter"))
	case FaultTableNotFound:
		s.write(w, call, s.coded(CodeTableNotFound, "", "table not found"))
	case FaultDrop:
		s.record(call)
		hangUp(w)
	case FaultLostAnswer:
		a := h()
		call.Code, call.Table, call.Items = a.code, a.table, a.items
		s.record(call)
		hangUp(w)
	case FaultSlow:
		if !s.sleep(r, s.opts.SlowDelay) {
			s.record(call)
			return
		}
		s.write(w, call, h())
	}
}

// sleep waits d and reports whether the client is still there. The body has
// been read, so the server notices a client that hangs up.
func (s *Server) sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return r.Context().Err() == nil
	case <-r.Context().Done():
	case <-s.closing:
	}
	return false
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
