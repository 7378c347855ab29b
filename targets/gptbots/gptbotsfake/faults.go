package gptbotsfake

import (
	"net/http"

	"github.com/replicator-cdc/replicator/targets/internal/fakekit"
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

// InjectFaults queues faults for the next calls that pass auth and the rate
// limit, one per call, in order, ahead of any random fault.
func (s *Server) InjectFaults(faults ...Fault) { s.faults.Queue(faults...) }

// SetFaultRate makes each call fail with probability p, with a fault drawn
// uniformly from kinds by the seeded generator. p = 0 turns it off.
func (s *Server) SetFaultRate(p float64, kinds ...Fault) { s.faults.SetRate(p, kinds...) }

// withFault answers the call, whose effect h computes, under fault f.
func (s *Server) withFault(w http.ResponseWriter, r *http.Request, call *Request, f Fault, h func() answer) {
	call.Fault = f
	switch f {
	case FaultNone:
		if d := s.faults.Delay(s.opts.Latency, s.opts.Jitter); d > 0 && r.URL.Path != PagePath && !s.srv.Sleep(r.Context(), d) {
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
		s.srv.AwaitArrival(s.opts.SlowDelay)
		s.throttle(w, call)
	case FaultInvalid:
		s.write(w, call, s.invalid("", "invalid parameter"))
	case FaultTableNotFound:
		s.write(w, call, s.coded(CodeTableNotFound, "", "table not found"))
	case FaultDrop:
		s.record(call)
		fakekit.HangUp(w)
	case FaultLostAnswer:
		a := h()
		call.Code, call.Table, call.Items = a.code, a.table, a.items
		s.record(call)
		fakekit.HangUp(w)
	case FaultSlow:
		// The body has been read, so the server notices a client that hangs up.
		if !s.srv.Sleep(r.Context(), s.opts.SlowDelay) {
			s.record(call)
			return
		}
		s.write(w, call, h())
	}
}
