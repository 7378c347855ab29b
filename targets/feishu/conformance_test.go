package feishu_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/feishu"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
	"github.com/replicator-cdc/replicator/targets/writertest"
)

// columnTypes gives each suite column the PostgreSQL type a Feishu table
// would have, so that the fake coerces values as the real API does.
var columnTypes = writertest.Types[string]{Int: "bigint", Text: "text", Float: "double precision", Bool: "boolean"}

// TestConformance runs the behaviour every writer shares against the
// Feishu writer and its fake.
func TestConformance(t *testing.T) {
	writertest.Run(t, conformance{})
}

type conformance struct{}

func (conformance) New(t *testing.T, opts writertest.Options, tables ...string) writertest.Target {
	t.Helper()
	// No rate limit on the fake and a fast-retrying writer: the suite
	// checks what the writer does, not how long it waits.
	fake := feishufake.New(feishufake.Options{RequestsPerSecond: opts.FakeLimit(), Jitter: opts.Jitter, Seed: 5})
	t.Cleanup(fake.Close)
	cols := writertest.FakeColumns(func(c writertest.Column) feishufake.Column {
		return feishufake.Column{Name: c.Name, DataType: columnTypes.Of(c.Type), IsUnique: c.Name == "id", AllowNull: c.Name != "id"}
	})
	writertest.AddTables(t, func(name string) error { return fake.AddTable(name, cols) }, tables...)
	w, err := feishu.New(feishu.Config{
		Name: "lark", BaseURL: fake.URL(), WorkspaceID: fake.Options().WorkspaceID,
		UserAccessToken: fake.AccessToken(), RequestsPerSecond: opts.RequestsPerSecond, RequestTimeout: 2 * time.Second,
		MaxBatchRows: opts.MaxBatchRows, MaxConcurrentRequests: opts.MaxConcurrentRequests,
		RetryMin: time.Millisecond, RetryMax: 20 * time.Millisecond,
	}, feishu.Deps{HTTPClient: opts.HTTPClient})
	require.NoError(t, err)
	return &feishuTarget{Adapter: writertest.NewAdapter(w, fake, feishufake.FaultServerError, feishufake.FaultDrop,
		feishufake.FaultLostAnswer, feishufake.FaultThrottle, feishufake.FaultThrottleLate), fake: fake}
}

type feishuTarget struct {
	writertest.Adapter[feishufake.Fault]
	fake *feishufake.Server
}

// Poison is a text value for the double precision column: PostgreSQL's
// input function refuses it, so the API answers 2320001 for the request.
func (f *feishuTarget) Poison(*testing.T) replicator.Field {
	return replicator.Field{Name: "score", Value: replicator.Value{Kind: replicator.KindText, Raw: []byte("not a number")}}
}

// MaxBatchRows is the writer's default, the API's limit.
func (f *feishuTarget) MaxBatchRows() int { return 500 }

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
