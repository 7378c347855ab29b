package feishu

import (
	"context"
	"errors"
	"net"
	"net/http"
)

// class is what to do after an answer.
type class int

const (
	classOK class = iota
	// classRetry: try again after a backoff.
	classRetry
	// classThrottle: try again after the answer's rate-limit reset.
	classThrottle
	// classRefresh: the access token is expired or invalid; refresh it,
	// then try again.
	classRefresh
	// classReject: the API refuses the rows of this request; split the
	// request to find them.
	classReject
	// classFatal: retrying cannot help; a person must act.
	classFatal
)

var classNames = [...]string{"ok", "retry", "throttle", "refresh", "reject", "fatal"}

func (c class) String() string { return classNames[c] }

// Feishu codes the writer acts on.
const (
	// noCode stands for an answer whose body is not a Feishu envelope.
	noCode = -1

	codeInvalidParam  = 2320001
	codeThrottled     = 99991400
	codeMissingToken  = 99991661
	codeTokenInvalid  = 99991663
	codeUserInvalid   = 99991668
	codeTokenExpired  = 99991677
	codeScopeMissing  = 99991672
	codeGrantMissing  = 99991676
	codeNoPermission  = 99991679
	codeWrongAppCreds = 99991543
)

// classify decides from the HTTP status, the envelope's code and the
// transport error. The body code wins over the status where both speak,
// because Feishu signals failures in the code whatever the status.
func classify(status, code int, transportErr error) class {
	switch {
	case transportErr != nil:
		return classRetry
	case code == codeThrottled || status == http.StatusTooManyRequests:
		return classThrottle
	case code == 0 && status >= 200 && status < 300:
		return classOK
	case code == codeTokenInvalid || code == codeUserInvalid || code == codeTokenExpired:
		return classRefresh
	case code == codeScopeMissing || code == codeGrantMissing || code == codeNoPermission,
		code == codeWrongAppCreds, code == codeMissingToken:
		return classFatal
	case code == codeInvalidParam:
		return classReject
	case status >= 500:
		return classRetry
	case code == noCode && status >= 200 && status < 300:
		// A garbled success answer: the write may or may not have landed,
		// and writing it again is harmless.
		return classRetry
	}
	return classFatal
}

// reason is the error metric's label for a failed attempt.
func reason(c class, transportErr error) string {
	switch c {
	case classThrottle:
		return "throttled"
	case classRefresh:
		return "token_expired"
	case classReject:
		return "rejected"
	case classFatal:
		return "fatal"
	}
	if transportErr == nil {
		return "server"
	}
	var ne net.Error
	if errors.Is(transportErr, context.DeadlineExceeded) || (errors.As(transportErr, &ne) && ne.Timeout()) {
		return "timeout"
	}
	return "connection"
}
