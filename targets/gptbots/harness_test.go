package gptbots_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/metrics"
	"github.com/replicator-cdc/replicator/targets/gptbots"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

const (
	table  = "tbl_customers"
	apiKey = "sk-test-secret-4242"
)

var fields = []gptbotsfake.Field{
	{Name: "id", Type: gptbotsfake.TypeText, Unique: true},
	{Name: "email", Type: gptbotsfake.TypeText, Unique: true},
	{Name: "name", Type: gptbotsfake.TypeText},
	{Name: "n", Type: gptbotsfake.TypeInt},
	{Name: "f", Type: gptbotsfake.TypeFloat},
	{Name: "ok", Type: gptbotsfake.TypeBoolean},
	{Name: "at", Type: gptbotsfake.TypeDateTime},
}

var spec = replicator.TableSpec{
	Source:  "public.customers",
	Table:   table,
	Key:     []string{"id"},
	Columns: []string{"id", "email", "name", "n", "f", "ok", "at"},
}

type harness struct {
	fake    *gptbotsfake.Server
	w       *gptbots.Writer
	metrics *metrics.Target
	logs    *testkit.LockedBuffer

	health testkit.HealthEvents
}

// newHarness starts a fake without a rate limit holding the test table, and
// a fast-retrying writer for it. adjust may change either configuration.
func newHarness(t *testing.T, adjust func(*gptbotsfake.Options, *gptbots.Config)) *harness {
	t.Helper()
	opts := gptbotsfake.Options{APIKey: apiKey, RequestsPerSecond: -1, SlowDelay: 5 * time.Second, Seed: 7}
	cfg := gptbots.Config{
		Name:              "bots",
		APIKey:            apiKey,
		RequestsPerSecond: 1000,
		RequestTimeout:    2 * time.Second,
		BackoffMin:        time.Millisecond,
		BackoffMax:        20 * time.Millisecond,
	}
	if adjust != nil {
		adjust(&opts, &cfg)
	}
	fake := gptbotsfake.New(opts)
	t.Cleanup(fake.Close)
	if err := fake.AddTable(table, fields); err != nil {
		t.Fatal(err)
	}
	cfg.BaseURL = fake.URL()
	h := &harness{fake: fake, metrics: metrics.NewTarget(prometheus.NewRegistry()), logs: &testkit.LockedBuffer{}}
	w, err := gptbots.New(cfg, gptbots.Deps{
		Logger:      slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:     h.metrics,
		TableHealth: h.health.Hook,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.w = w
	return h
}

func (h *harness) prepare(t *testing.T) {
	t.Helper()
	if err := h.w.Prepare(ctx(t), []replicator.TableSpec{spec}); err != nil {
		t.Fatal(err)
	}
}

// write applies records as one batch and fails the test on an error.
func (h *harness) write(t *testing.T, recs ...replicator.Record) []replicator.Rejection {
	t.Helper()
	rej, err := h.w.Write(ctx(t), replicator.Batch{Table: spec, Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	return rej
}

// rows indexes the fake's rows by id.
func (h *harness) rows() map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, r := range h.fake.Rows(table) {
		out[r["id"].(string)] = r
	}
	return out
}

// calls returns the logged calls to one path.
func (h *harness) calls(path string) []gptbotsfake.Request {
	var out []gptbotsfake.Request
	for _, r := range h.fake.Requests() {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// itemCounts is the number of items of each call to path, smallest first:
// chunks travel concurrently, so they may arrive in any order.
func (h *harness) itemCounts(path string) []int {
	var counts []int
	for _, c := range h.calls(path) {
		counts = append(counts, c.Items)
	}
	slices.Sort(counts)
	return counts
}

func (h *harness) errorsCounted(reason string) float64 {
	return testutil.ToFloat64(h.metrics.Errors.WithLabelValues("bots", reason))
}

// checkNoSecret fails when the API key appears in the logs or in err.
func (h *harness) checkNoSecret(t *testing.T, err error) {
	t.Helper()
	if strings.Contains(h.logs.String(), apiKey) || (err != nil && strings.Contains(err.Error(), apiKey)) {
		t.Error("the API key leaked into logs or errors")
	}
}

// ctx's bound is generous: bodies near 5 MB take many seconds under -race
// on a busy machine; it only keeps a hung test from running forever.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return c
}

func text(s string) replicator.Value {
	return replicator.Value{Kind: replicator.KindText, Raw: []byte(s)}
}

func val(k replicator.Kind, raw string) replicator.Value {
	return replicator.Value{Kind: k, Raw: []byte(raw)}
}

func field(name string, v replicator.Value) replicator.Field {
	return replicator.Field{Name: name, Value: v}
}

// upsert is a record for the row id carrying the key and the given fields.
func upsert(id string, fs ...replicator.Field) replicator.Record {
	return replicator.Record{
		Op:     replicator.OpUpsert,
		Key:    []replicator.Field{field("id", text(id))},
		Fields: append([]replicator.Field{field("id", text(id))}, fs...),
	}
}

func remove(id string) replicator.Record {
	return replicator.Record{Op: replicator.OpDelete, Key: []replicator.Field{field("id", text(id))}}
}

// rejectedIDs lists the ids of rejected records.
func rejectedIDs(rej []replicator.Rejection) map[string]string {
	out := map[string]string{}
	for _, r := range rej {
		out[string(r.Record.Key[0].Value.Raw)] = r.Reason
	}
	return out
}
