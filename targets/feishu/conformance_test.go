package feishu_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/feishu"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
	"github.com/replicator-cdc/replicator/targets/writertest"
)

// TestConformance runs the behaviour every writer shares against the
// Feishu writer and its fake.
func TestConformance(t *testing.T) {
	writertest.Run(t, conformance{})
}

type conformance struct{}

var _ writertest.Harness = conformance{}

// columnTypes gives each suite column the PostgreSQL type a Feishu table
// would have, so that the fake coerces values as the real API does.
var columnTypes = map[writertest.Type]string{
	writertest.TypeInt:   "bigint",
	writertest.TypeText:  "text",
	writertest.TypeFloat: "double precision",
	writertest.TypeBool:  "boolean",
}

func (conformance) New(t *testing.T, opts writertest.Options, tables ...string) writertest.Target {
	t.Helper()
	// No rate limit on the fake and a fast-retrying writer: the suite
	// checks what the writer does, not how long it waits.
	limit := -1
	if opts.RateLimit > 0 {
		limit = opts.RateLimit
	}
	fake := feishufake.New(feishufake.Options{RequestsPerSecond: limit, Seed: 5})
	t.Cleanup(fake.Close)
	cols := make([]feishufake.Column, len(writertest.Columns))
	for i, c := range writertest.Columns {
		cols[i] = feishufake.Column{Name: c.Name, DataType: columnTypes[c.Type], IsUnique: c.Name == "id", AllowNull: c.Name != "id"}
	}
	for _, name := range tables {
		if err := fake.AddTable(name, cols); err != nil {
			t.Fatal(err)
		}
	}
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(client.CloseIdleConnections)
	rate := opts.RequestsPerSecond
	if rate == 0 {
		rate = 1000
	}
	w, err := feishu.New(feishu.Config{
		Name: "lark", BaseURL: fake.URL(), WorkspaceID: fake.Options().WorkspaceID,
		UserAccessToken: fake.AccessToken(), RequestsPerSecond: rate, RequestTimeout: 2 * time.Second,
		RetryMin: time.Millisecond, RetryMax: 20 * time.Millisecond,
	}, feishu.Deps{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	return &feishuTarget{fake: fake, w: w}
}

type feishuTarget struct {
	fake *feishufake.Server
	w    *feishu.Writer
}

func (f *feishuTarget) Writer() replicator.Writer { return f.w }

// MaxBatchRows is the writer's default, the API's limit.
func (f *feishuTarget) MaxBatchRows() int { return 500 }

func (f *feishuTarget) Rows(table string) []map[string]any { return f.fake.Rows(table) }

var feishuFaults = map[writertest.Fault]feishufake.Fault{
	writertest.FaultServerError:  feishufake.FaultServerError,
	writertest.FaultDrop:         feishufake.FaultDrop,
	writertest.FaultLostAnswer:   feishufake.FaultLostAnswer,
	writertest.FaultThrottle:     feishufake.FaultThrottle,
	writertest.FaultThrottleLate: feishufake.FaultThrottleLate,
}

func mapFaults(faults []writertest.Fault) []feishufake.Fault {
	out := make([]feishufake.Fault, len(faults))
	for i, f := range faults {
		out[i] = feishuFaults[f]
	}
	return out
}

func (f *feishuTarget) InjectFaults(faults ...writertest.Fault) {
	f.fake.InjectFaults(mapFaults(faults)...)
}

func (f *feishuTarget) SetFaultRate(p float64, faults ...writertest.Fault) {
	f.fake.SetFaultRate(p, mapFaults(faults)...)
}

// Poison is a text value for the double precision column: PostgreSQL's
// input function refuses it, so the API answers 2320001 for the request.
func (f *feishuTarget) Poison(*testing.T) replicator.Field {
	return replicator.Field{Name: "score", Value: replicator.Value{Kind: replicator.KindText, Raw: []byte("not a number")}}
}

func (f *feishuTarget) WriteRequests() int {
	n := 0
	for _, r := range f.fake.Requests() {
		if r.Method != http.MethodGet && strings.HasSuffix(r.Path, "/records") {
			n++
		}
	}
	return n
}

// Quota counts the record calls, the ones the fake rate-limits.
func (f *feishuTarget) Quota() writertest.Quota {
	var calls []feishufake.Request
	q := writertest.Quota{}
	for _, r := range f.fake.Requests() {
		if strings.HasSuffix(r.Path, "/records") {
			calls = append(calls, r)
			q.Throttles += min(1, int(r.Reset))
		}
	}
	q.MaxPerSecond = feishufake.MaxPerWindow(calls, time.Second)
	q.Early = len(feishufake.EarlyAfterThrottle(calls))
	return q
}
