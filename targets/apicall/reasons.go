package apicall

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"
)

// The errors metric's reasons (replicator_target_errors_total{reason}),
// one vocabulary for every target.
const (
	// ReasonThrottled: the API asked to slow down (429).
	ReasonThrottled = "throttled"
	// ReasonTimeout: no answer within the request timeout, or a 408.
	ReasonTimeout = "timeout"
	// ReasonConnection: the connection failed or broke before an answer.
	ReasonConnection = "connection"
	// ReasonServer: the API failed (5xx, an internal-error code).
	ReasonServer = "server"
	// ReasonBadAnswer: a success status with a body that is not the API's
	// answer; the request may or may not have landed.
	ReasonBadAnswer = "bad_answer"
	// ReasonTokenExpired: the access token was refused; it is refreshed.
	ReasonTokenExpired = "token_expired"
	// ReasonUnauthorized: the credentials are wrong or missing.
	ReasonUnauthorized = "unauthorized"
	// ReasonForbidden: the credentials lack a scope or permission.
	ReasonForbidden = "forbidden"
	// ReasonRejected: the API refused records (counted by the writer).
	ReasonRejected = "rejected"
	// ReasonTable: an answer about the table as a whole (counted by the
	// writer): missing, no access, schema mismatch.
	ReasonTable = "table"
	// ReasonUnexpected: an answer the classifier does not know; a person
	// must look.
	ReasonUnexpected = "unexpected"
	// ReasonUnencodable: a record's value cannot be written to the
	// target's column (counted by the writer, before any request).
	ReasonUnencodable = "unencodable"
	// ReasonTokenRefresh: the OAuth token endpoint refused a refresh.
	ReasonTokenRefresh = "token_refresh"
	// ReasonTokenUnsaved: a refreshed token could not be saved.
	ReasonTokenUnsaved = "token_unsaved"
)

// transportVerdict classifies a failure where no answer arrived: the
// request may or may not have landed, and every target retries it.
func transportVerdict(err error) Verdict {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return Verdict{Action: Retry, Reason: ReasonTimeout, Failure: err}
	}
	return Verdict{Action: Retry, Reason: ReasonConnection, Failure: err}
}

// maxReset bounds the wait a throttling answer can order.
const maxReset = 5 * time.Minute

// Seconds reads a header that counts seconds to wait (Retry-After,
// x-ogw-ratelimit-reset): 0 when missing or not a positive whole number,
// at most five minutes.
func Seconds(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n <= 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, maxReset)
}
