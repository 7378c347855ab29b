package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

const (
	// tokenVar carries the fake's user access token into the configuration.
	tokenVar = "E2E_FEISHU_TOKEN"
	// rateLimit is both the writer's requests_per_second and the fake's
	// limit, Feishu's documented 10 per second.
	rateLimit = 10
)

// itemsColumns is the Feishu table the items mirror into, typed like the
// source so that the fake coerces values the way PostgreSQL would.
var itemsColumns = []feishufake.Column{
	{Name: "id", DataType: "bigint", IsPrimaryKey: true},
	{Name: "name", DataType: "text", AllowNull: true},
	{Name: "qty", DataType: "integer", AllowNull: true},
	{Name: "price", DataType: "numeric", AllowNull: true},
	{Name: "ratio", DataType: "double precision", AllowNull: true},
	{Name: "flag", DataType: "boolean", AllowNull: true},
	{Name: "at", DataType: "timestamptz", AllowNull: true},
	{Name: "doc", DataType: "jsonb", AllowNull: true},
	{Name: "tags", DataType: "jsonb", AllowNull: true},
	{Name: "big", DataType: "text", AllowNull: true},
}

func feishuTarget() target {
	return target{
		name:   "feishu",
		zone:   "Asia/Shanghai",
		values: palette{specials: true},
		columns: columns{kinds: map[string]colKind{
			"id": kindExact, "name": kindExact, "qty": kindExact, "price": kindNumeric, "ratio": kindFloat,
			"flag": kindExact, "at": kindInstant, "doc": kindJSON, "tags": kindJSON, "big": kindExact,
		}},
		faultRate: 0.15,
		shutdown:  10 * time.Second,
		start: func(t *testing.T, seed uint64) fake {
			// Slow answers outlast the writer's 2s request timeout, so that
			// the client gives up on them and the fake applies nothing.
			return newFeishuFake(t, feishufake.Options{SlowDelay: 3 * time.Second, Seed: seed}, itemsColumns)
		},
	}
}

// feishuFake is a fake Feishu workspace holding the items table, at the
// documented rate limit of 10 requests per second.
type feishuFake struct{ *feishufake.Server }

func newFeishuFake(t *testing.T, opts feishufake.Options, cols []feishufake.Column) feishuFake {
	t.Helper()
	s := feishufake.New(opts)
	t.Cleanup(s.Close)
	require.NoError(t, s.AddTable("items", cols))
	return feishuFake{s}
}

func (f feishuFake) yaml() string {
	return fmt.Sprintf(`targets:
  lark:
    type: feishu
    base_url: %s
    workspace_id: workspace_fake
    user_access_token: ${%s}
    requests_per_second: %d
    request_timeout: 2s
mappings:
  - source: public.items
    target: lark
    table: items
`, f.URL(), tokenVar, rateLimit)
}

func (f feishuFake) secret() (string, string) { return tokenVar, f.AccessToken() }

func (f feishuFake) rows() []map[string]any {
	rows := f.Rows("items")
	for _, r := range rows {
		delete(r, "_id")
	}
	return rows
}

// feishuFaults is the mix: 10% failures (5xx, answers slower than the
// request timeout, dropped connections) to 5% applied with the answer lost.
var feishuFaults = []feishufake.Fault{feishufake.FaultServerError, feishufake.FaultServerError,
	feishufake.FaultSlow, feishufake.FaultSlow, feishufake.FaultDrop, feishufake.FaultDrop,
	feishufake.FaultLostAnswer, feishufake.FaultLostAnswer, feishufake.FaultLostAnswer}

func (f feishuFake) faults(p float64) { f.SetFaultRate(p, feishuFaults...) }

func (f feishuFake) injectEach() {
	f.InjectFaults(feishufake.FaultServerError, feishufake.FaultSlow, feishufake.FaultDrop, feishufake.FaultLostAnswer)
}

func (f feishuFake) down() { f.SetFaultRate(1, feishufake.FaultServerError, feishufake.FaultSlow) }

func (f feishuFake) writeFaults() map[string]int {
	out := map[string]int{}
	for _, r := range writeRequests(f.Requests()) {
		out[r.Fault.String()]++
	}
	return out
}

func (f feishuFake) faultKinds() []string {
	return []string{feishufake.FaultServerError.String(), feishufake.FaultSlow.String(), feishufake.FaultDrop.String(), feishufake.FaultLostAnswer.String()}
}

func (f feishuFake) refuses() bool { return false }

func (f feishuFake) checkDeadLetters(t *testing.T, stateDir string, _ map[string]map[string]any) {
	requireNoDeadLetters(t, stateDir)
}

// checkRequests: the writer paces its record calls by the rate limit as
// the fake counts them, by arrival. It cannot see how long a request takes
// to arrive (under -race on a busy machine, now and then over 25 ms), so
// the fake may throttle a call now and then, and the writer widens its
// slack after each: at most 2% of the calls, and at least 2 allowed. The
// fake never lets more than the limit through in any second.
func (f feishuFake) checkRequests(t *testing.T) string {
	reqs := f.Requests()
	calls := recordCalls(reqs)
	var throttled int
	var passed []feishufake.Request
	for _, r := range calls {
		switch {
		case r.Status == 429 && r.Fault == feishufake.FaultNone:
			throttled++
		case r.Status != 429:
			passed = append(passed, r)
		}
	}
	assert.LessOrEqual(t, throttled, max(2, len(calls)/50), "the fake throttled the writer on its own")
	busiest := feishufake.MaxPerWindow(passed, time.Second)
	assert.LessOrEqual(t, busiest, rateLimit, "record calls let through in one second:%s", busiestWindow(passed, time.Second))
	return fmt.Sprintf("%d requests, busiest second %d record calls, %d throttled by the fake", len(reqs), feishufake.MaxPerWindow(calls, time.Second), throttled)
}

// recordCalls are the calls of the records API, the one Feishu documents
// its 10 requests per second for and the fake's limiter counts; schema
// reads are another API with a limit of their own.
func recordCalls(reqs []feishufake.Request) []feishufake.Request {
	var out []feishufake.Request
	for _, r := range reqs {
		if strings.HasSuffix(r.Path, "/records") {
			out = append(out, r)
		}
	}
	return out
}

// writeRequests are the record writes the fake saw.
func writeRequests(reqs []feishufake.Request) []feishufake.Request {
	var out []feishufake.Request
	for _, r := range recordCalls(reqs) {
		if r.Method != "GET" {
			out = append(out, r)
		}
	}
	return out
}

// busiestWindow returns the requests of the fullest window of length d
// (half-open, (t-d, t], as MaxPerWindow measures), for failure messages.
func busiestWindow(reqs []feishufake.Request, d time.Duration) string {
	sorted := slices.SortedFunc(slices.Values(reqs), func(a, b feishufake.Request) int { return a.Time.Compare(b.Time) })
	bestLo, bestHi, lo := 0, -1, 0
	for hi := range sorted {
		for !sorted[lo].Time.After(sorted[hi].Time.Add(-d)) {
			lo++
		}
		if hi-lo > bestHi-bestLo {
			bestLo, bestHi = lo, hi
		}
	}
	var b strings.Builder
	for i := bestLo; i <= bestHi; i++ {
		r := sorted[i]
		fmt.Fprintf(&b, "\n  %s %-6s %s rows=%d status=%d fault=%s", r.Time.Format("15:04:05.000000"), r.Method, r.Path, r.Rows, r.Status, r.Fault)
	}
	return b.String()
}
