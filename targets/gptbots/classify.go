package gptbots

import (
	"context"
	"errors"
	"net"
	"net/http"
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

// action is what the writer does about one answer.
type action int

const (
	// actOK: the call was applied (an update may still list failed items).
	actOK action = iota
	// actRetry: nothing is known to be applied; send the same call again.
	actRetry
	// actSplit: the request is invalid as a whole; package isolate splits
	// it to find the records that make it so, or finds the table failing.
	actSplit
	// actTable: the answer is about the table (missing, no access): the
	// write waits and is sent again, nothing is rejected.
	actTable
	// actFatal: retrying cannot help; a person must act.
	actFatal
)

// verdict is an action and its reason, which is the errors metric label.
type verdict struct {
	action action
	reason string
}

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
	// err is the transport error when no answer arrived.
	err error
}

// classify decides what to do about a reply. The body code wins over the
// HTTP status, because the API is only documented by its codes and may send
// them with any status.
func classify(r reply) verdict {
	if r.err != nil {
		var ne net.Error
		if errors.Is(r.err, context.DeadlineExceeded) || (errors.As(r.err, &ne) && ne.Timeout()) {
			return verdict{actRetry, "timeout"}
		}
		return verdict{actRetry, "connection"}
	}
	if r.hasCode && r.code != 0 {
		switch r.code {
		case codeInvalid:
			return verdict{actSplit, "rejected"}
		case codeInternal:
			return verdict{actRetry, "server"}
		case codeTableNotFound, codeNoAccess:
			return verdict{actTable, "table"}
		case codeUnauthorized:
			return verdict{actFatal, "unauthorized"}
		case codeThrottled:
			return verdict{actRetry, "throttled"}
		}
		if r.status/100 == 2 {
			return verdict{actFatal, "unexpected"}
		}
	}
	switch {
	case r.status/100 == 2 && r.jsonBody:
		return verdict{actOK, "ok"}
	case r.status/100 == 2:
		return verdict{actRetry, "bad_answer"}
	case r.status == http.StatusUnauthorized:
		return verdict{actFatal, "unauthorized"}
	case r.status == http.StatusForbidden:
		return verdict{actFatal, "forbidden"}
	case r.status == http.StatusTooManyRequests:
		return verdict{actRetry, "throttled"}
	case r.status == http.StatusRequestTimeout:
		return verdict{actRetry, "timeout"}
	case r.status == http.StatusBadRequest, r.status == http.StatusRequestEntityTooLarge:
		return verdict{actSplit, "rejected"}
	case r.status/100 == 5:
		return verdict{actRetry, "server"}
	}
	return verdict{actFatal, "unexpected"}
}
