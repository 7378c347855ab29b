package feishu

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/replicator-cdc/replicator/targets/apicall"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		status, code int
		want         apicall.Action
		reason       string
	}{
		{200, 0, apicall.Done, ""},
		{204, 0, apicall.Done, ""},
		{429, 99991400, apicall.Throttle, "throttled"},
		{400, 99991400, apicall.Throttle, "throttled"},
		{200, 99991400, apicall.Throttle, "throttled"},
		{429, noCode, apicall.Throttle, "throttled"},
		{401, 99991663, apicall.Refresh, "token_expired"},
		{400, 99991668, apicall.Refresh, "token_expired"},
		{401, 99991677, apicall.Refresh, "token_expired"},
		{200, 99991677, apicall.Refresh, "token_expired"},
		{400, 99991672, apicall.Fatal, "forbidden"},
		{400, 99991676, apicall.Fatal, "forbidden"},
		{400, 99991679, apicall.Fatal, "forbidden"},
		{400, 99991543, apicall.Fatal, "unauthorized"},
		{401, 99991661, apicall.Fatal, "unauthorized"},
		{400, 2320001, apicall.Reject, "rejected"},
		{200, 2320001, apicall.Reject, "rejected"},
		{500, 2320001, apicall.Reject, "rejected"},
		{500, 500, apicall.Retry, "server"},
		{502, noCode, apicall.Retry, "server"},
		{503, 0, apicall.Retry, "server"},
		{504, 1234, apicall.Retry, "server"},
		{200, noCode, apicall.Retry, "bad_answer"},
		{400, 1234, apicall.Fatal, "unexpected"},
		{404, noCode, apicall.Fatal, "unexpected"},
		{403, 0, apicall.Fatal, "unexpected"},
		{200, 1234, apicall.Fatal, "unexpected"},
		{301, noCode, apicall.Fatal, "unexpected"},
	}
	for _, c := range cases {
		v := classify(answer{status: c.status, code: c.code, header: http.Header{}})
		assert.Equal(t, c.want, v.Action, "HTTP %d code %d", c.status, c.code)
		assert.Equal(t, c.reason, v.Reason, "HTTP %d code %d", c.status, c.code)
		assert.Equal(t, c.want != apicall.Done, v.Failure != nil, "HTTP %d code %d", c.status, c.code)
	}
}

// TestClassifyMissingConstraint: an upsert whose on_conflict matches no
// unique constraint is the table's schema, not a row: fatal.
func TestClassifyMissingConstraint(t *testing.T) {
	v := classify(answer{status: 400, code: 2320001, msg: "param is invalid: there is no unique or exclusion constraint matching the ON CONFLICT specification"})
	assert.Equal(t, apicall.Fatal, v.Action)
	assert.Equal(t, "table", v.Reason)
}

// TestThrottleReset: the pause is the reset the answer names, and the
// loop's default when it names none or nonsense.
func TestThrottleReset(t *testing.T) {
	for in, want := range map[string]time.Duration{"3": 3 * time.Second, "": 0, "x": 0, "-2": 0, "99999": 5 * time.Minute} {
		v := classify(answer{status: 429, code: 99991400, header: http.Header{"X-Ogw-Ratelimit-Reset": {in}}})
		assert.Equal(t, want, v.Reset, "x-ogw-ratelimit-reset %q", in)
	}
}
