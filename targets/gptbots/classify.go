package gptbots

import (
	"errors"
	"net/http"
	"time"

	"github.com/replicator-cdc/replicator/targets/apicall"
)

// Body codes the API documents, and the HTTP-like codes an undocumented
// error body may carry.
const (
	codeInvalid       = 40000
	codeInternal      = 50000
	codeTableNotFound = 403106
	codeNoAccess      = 403131
	codeUnauthorized  = 401
	codeThrottled     = 429
)

// reply is what came back from one call.
type reply struct {
	status int
	// code is the body's code when hasCode; success answers of an update
	// carry none.
	code    int
	hasCode bool
	// jsonBody reports whether the body is a JSON object.
	jsonBody bool
	message  string
	body     []byte
	// retryAfter is the wait a Retry-After header asks for, if any; the
	// API does not document one.
	retryAfter time.Duration
}

// classify decides what to do about a reply. The body code wins over the
// HTTP status, because the API is only documented by its codes and may send
// them with any status. An answer about the table (missing, no access) is
// a refusal whose scope is the table: the write waits and goes again.
func classify(r reply) apicall.Verdict {
	v := func(act apicall.Action, reason string) apicall.Verdict {
		return apicall.Verdict{Action: act, Reason: reason, Failure: errors.New(describe(r))}
	}
	throttled := func() apicall.Verdict {
		t := v(apicall.Throttle, apicall.ReasonThrottled)
		t.Reset = r.retryAfter
		return t
	}
	if r.hasCode && r.code != 0 {
		switch r.code {
		case codeInvalid:
			return v(apicall.Reject, apicall.ReasonRejected)
		case codeInternal:
			return v(apicall.Retry, apicall.ReasonServer)
		case codeTableNotFound, codeNoAccess:
			return v(apicall.Reject, apicall.ReasonTable)
		case codeUnauthorized:
			return v(apicall.Fatal, apicall.ReasonUnauthorized)
		case codeThrottled:
			return throttled()
		}
		if r.status/100 == 2 {
			return v(apicall.Fatal, apicall.ReasonUnexpected)
		}
	}
	switch {
	case r.status/100 == 2 && r.jsonBody:
		return apicall.Verdict{Action: apicall.Done}
	case r.status/100 == 2:
		return v(apicall.Retry, apicall.ReasonBadAnswer)
	case r.status == http.StatusUnauthorized:
		return v(apicall.Fatal, apicall.ReasonUnauthorized)
	case r.status == http.StatusForbidden:
		return v(apicall.Fatal, apicall.ReasonForbidden)
	case r.status == http.StatusTooManyRequests:
		return throttled()
	case r.status == http.StatusRequestTimeout:
		return v(apicall.Retry, apicall.ReasonTimeout)
	case r.status == http.StatusBadRequest, r.status == http.StatusRequestEntityTooLarge:
		return v(apicall.Reject, apicall.ReasonRejected)
	case r.status/100 == 5:
		return v(apicall.Retry, apicall.ReasonServer)
	}
	return v(apicall.Fatal, apicall.ReasonUnexpected)
}
