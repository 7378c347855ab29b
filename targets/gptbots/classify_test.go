package gptbots

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var _ net.Error = timeoutErr{}

func TestClassify(t *testing.T) {
	coded := func(status, code int) reply {
		return reply{status: status, code: code, hasCode: true, jsonBody: true, message: "m"}
	}
	for _, tc := range []struct {
		name   string
		in     reply
		action action
		reason string
	}{
		{"update ok without code", reply{status: 200, jsonBody: true}, actOK, "ok"},
		{"delete ok code 0", coded(200, 0), actOK, "ok"},
		{"2xx not json", reply{status: 200, body: []byte("<html>")}, actRetry, "bad_answer"},
		{"invalid 400", coded(400, codeInvalid), actSplit, "rejected"},
		{"invalid 200", coded(200, codeInvalid), actSplit, "rejected"},
		{"internal 500", coded(500, codeInternal), actRetry, "server"},
		{"internal 200", coded(200, codeInternal), actRetry, "server"},
		{"table not found 403", coded(403, codeTableNotFound), actTable, "table"},
		{"table not found 200", coded(200, codeTableNotFound), actTable, "table"},
		{"no access 403", coded(403, codeNoAccess), actTable, "table"},
		{"no access 200", coded(200, codeNoAccess), actTable, "table"},
		{"unauthorized code", coded(401, codeUnauthorized), actFatal, "unauthorized"},
		{"unauthorized bare", reply{status: 401}, actFatal, "unauthorized"},
		{"forbidden bare", reply{status: 403}, actFatal, "forbidden"},
		{"throttled code", coded(429, codeThrottled), actRetry, "throttled"},
		{"throttled bare", reply{status: 429}, actRetry, "throttled"},
		{"throttled code under 200", coded(200, codeThrottled), actRetry, "throttled"},
		{"request timeout", reply{status: 408}, actRetry, "timeout"},
		{"bad request bare", reply{status: 400}, actSplit, "rejected"},
		{"too large", reply{status: 413}, actSplit, "rejected"},
		{"bad gateway html", reply{status: 502, body: []byte("<html>")}, actRetry, "server"},
		{"unavailable", reply{status: 503}, actRetry, "server"},
		{"unknown code 500", coded(500, 12345), actRetry, "server"},
		{"unknown code 200", coded(200, 12345), actFatal, "unexpected"},
		{"unknown code 404", coded(404, 12345), actFatal, "unexpected"},
		{"not found", reply{status: 404}, actFatal, "unexpected"},
		{"deadline", reply{err: fmt.Errorf("post: %w", context.DeadlineExceeded)}, actRetry, "timeout"},
		{"net timeout", reply{err: timeoutErr{}}, actRetry, "timeout"},
		{"refused", reply{err: errors.New("connection refused")}, actRetry, "connection"},
		{"eof", reply{err: fmt.Errorf("post: %w", errors.New("EOF"))}, actRetry, "connection"},
	} {
		if got := classify(tc.in); got.action != tc.action || got.reason != tc.reason {
			t.Errorf("%s: got %v/%s, want %v/%s", tc.name, got.action, got.reason, tc.action, tc.reason)
		}
	}
}
