package gptbots

import (
	"testing"
	"time"

	"github.com/replicator-cdc/replicator/targets/apicall"
)

func TestClassify(t *testing.T) {
	coded := func(status, code int) reply {
		return reply{status: status, code: code, hasCode: true, jsonBody: true, message: "m"}
	}
	for _, tc := range []struct {
		name   string
		in     reply
		action apicall.Action
		reason string
	}{
		{"update ok without code", reply{status: 200, jsonBody: true}, apicall.Done, ""},
		{"delete ok code 0", coded(200, 0), apicall.Done, ""},
		{"2xx not json", reply{status: 200, body: []byte("<html>")}, apicall.Retry, "bad_answer"},
		{"invalid 400", coded(400, codeInvalid), apicall.Reject, "rejected"},
		{"invalid 200", coded(200, codeInvalid), apicall.Reject, "rejected"},
		{"internal 500", coded(500, codeInternal), apicall.Retry, "server"},
		{"internal 200", coded(200, codeInternal), apicall.Retry, "server"},
		{"table not found 403", coded(403, codeTableNotFound), apicall.Reject, "table"},
		{"table not found 200", coded(200, codeTableNotFound), apicall.Reject, "table"},
		{"no access 403", coded(403, codeNoAccess), apicall.Reject, "table"},
		{"no access 200", coded(200, codeNoAccess), apicall.Reject, "table"},
		{"unauthorized code", coded(401, codeUnauthorized), apicall.Fatal, "unauthorized"},
		{"unauthorized bare", reply{status: 401}, apicall.Fatal, "unauthorized"},
		{"forbidden bare", reply{status: 403}, apicall.Fatal, "forbidden"},
		{"throttled code", coded(429, codeThrottled), apicall.Throttle, "throttled"},
		{"throttled bare", reply{status: 429}, apicall.Throttle, "throttled"},
		{"throttled code under 200", coded(200, codeThrottled), apicall.Throttle, "throttled"},
		{"request timeout", reply{status: 408}, apicall.Retry, "timeout"},
		{"bad request bare", reply{status: 400}, apicall.Reject, "rejected"},
		{"too large", reply{status: 413}, apicall.Reject, "rejected"},
		{"bad gateway html", reply{status: 502, body: []byte("<html>")}, apicall.Retry, "server"},
		{"unavailable", reply{status: 503}, apicall.Retry, "server"},
		{"unknown code 500", coded(500, 12345), apicall.Retry, "server"},
		{"unknown code 200", coded(200, 12345), apicall.Fatal, "unexpected"},
		{"unknown code 404", coded(404, 12345), apicall.Fatal, "unexpected"},
		{"not found", reply{status: 404}, apicall.Fatal, "unexpected"},
	} {
		if got := classify(tc.in); got.Action != tc.action || got.Reason != tc.reason || (got.Action != apicall.Done) != (got.Failure != nil) {
			t.Errorf("%s: got %v/%s (%v), want %v/%s", tc.name, got.Action, got.Reason, got.Failure, tc.action, tc.reason)
		}
	}
}

// TestThrottleReset: a 429 orders the pause its Retry-After names; one
// without the header leaves the default to the loop.
func TestThrottleReset(t *testing.T) {
	for _, r := range []reply{{status: 429, retryAfter: 3 * time.Second}, {status: 200, code: codeThrottled, hasCode: true, jsonBody: true, retryAfter: 3 * time.Second}} {
		if v := classify(r); v.Action != apicall.Throttle || v.Reset != 3*time.Second {
			t.Errorf("%+v: got %v after %v", r, v.Action, v.Reset)
		}
	}
	if v := classify(reply{status: 429}); v.Reset != 0 {
		t.Errorf("no Retry-After: reset %v, want 0 (the default)", v.Reset)
	}
}
