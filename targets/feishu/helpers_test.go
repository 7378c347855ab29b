package feishu

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/metrics"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

type env struct {
	t    *testing.T
	fake *feishufake.Server
	cfg  Config
	m    *metrics.Target
	logs *testkit.LockedBuffer
	http *http.Client
}

// newEnv starts a fake (unlimited unless opts say otherwise) and a config
// for a fixed-token writer at a high rate, so tests are fast.
func newEnv(t *testing.T, opts feishufake.Options) *env {
	t.Helper()
	if opts.RequestsPerSecond == 0 {
		opts.RequestsPerSecond = -1
	}
	fake := feishufake.New(opts)
	t.Cleanup(fake.Close)
	e := &env{
		t:    t,
		fake: fake,
		m:    metrics.NewTarget(prometheus.NewRegistry()),
		logs: &testkit.LockedBuffer{},
		http: &http.Client{},
		cfg: Config{
			Name: "lark", BaseURL: fake.URL(), AuthorizeURL: fake.URL(), WorkspaceID: fake.Options().WorkspaceID,
			UserAccessToken: fake.AccessToken(), RequestsPerSecond: 1000, RequestTimeout: 2 * time.Second,
			RetryMin: time.Millisecond, RetryMax: 20 * time.Millisecond, StateDir: t.TempDir(),
		},
	}
	t.Cleanup(e.http.CloseIdleConnections)
	return e
}

// useOAuth switches the config to OAuth with a fresh refresh token.
func (e *env) useOAuth() {
	o := e.fake.Options()
	e.cfg.UserAccessToken = ""
	e.cfg.OAuth = OAuth{AppID: o.AppID, AppSecret: o.AppSecret, RefreshToken: e.fake.RefreshToken()}
}

func (e *env) writer() *Writer {
	e.t.Helper()
	w, err := New(e.cfg, Deps{Logger: slog.New(slog.NewTextHandler(e.logs, nil)), Metrics: e.m, HTTPClient: e.http})
	require.NoError(e.t, err)
	return w
}

func (e *env) write(w *Writer, table replicator.TableSpec, recs ...replicator.Record) []replicator.Rejection {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rej, err := w.Write(ctx, replicator.Batch{Table: table, Records: recs})
	require.NoError(e.t, err)
	return rej
}

// requests returns the logged calls to a path suffix ("/records", "/token").
func (e *env) requests(method, suffix string) []feishufake.Request {
	var out []feishufake.Request
	for _, r := range e.fake.Requests() {
		if (method == "" || r.Method == method) && len(r.Path) >= len(suffix) && r.Path[len(r.Path)-len(suffix):] == suffix {
			out = append(out, r)
		}
	}
	return out
}

func (e *env) tokenFile() tokenFile {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.cfg.StateDir, "feishu-lark.token.json"))
	require.NoError(e.t, err)
	var f tokenFile
	require.NoError(e.t, json.Unmarshal(b, &f))
	return f
}

func counter(c *prometheus.CounterVec, labels ...string) float64 {
	return testutil.ToFloat64(c.WithLabelValues(labels...))
}

func val(k replicator.Kind, raw string) replicator.Value {
	return replicator.Value{Kind: k, Raw: []byte(raw)}
}

func field(name string, v replicator.Value) replicator.Field {
	return replicator.Field{Name: name, Value: v}
}

// upsertRec is an upsert keyed by its first field.
func upsertRec(fields ...replicator.Field) replicator.Record {
	return replicator.Record{Op: replicator.OpUpsert, Key: fields[:1], Fields: fields}
}

func deleteRec(key ...replicator.Field) replicator.Record {
	return replicator.Record{Op: replicator.OpDelete, Key: key}
}

func idField(n int) replicator.Field {
	return field("id", val(replicator.KindInt, strconv.Itoa(n)))
}

// customers is the usual test table: id is the unique key.
var customers = replicator.TableSpec{
	Source: "public.customers", Table: "customers", Key: []string{"id"},
	Columns: []string{"id", "name", "note", "big", "amount", "score", "active", "created", "day", "payload", "blob"},
}

func (e *env) addCustomers() {
	e.t.Helper()
	require.NoError(e.t, e.fake.AddTable("customers", []feishufake.Column{
		{Name: "id", DataType: "bigint", IsUnique: true},
		{Name: "name", DataType: "text", AllowNull: true},
		{Name: "note", DataType: "text", AllowNull: true},
		{Name: "big", DataType: "bigint", AllowNull: true},
		{Name: "amount", DataType: "numeric", AllowNull: true},
		{Name: "score", DataType: "double precision", AllowNull: true},
		{Name: "active", DataType: "boolean", AllowNull: true},
		{Name: "created", DataType: "timestamptz", AllowNull: true},
		{Name: "day", DataType: "date", AllowNull: true},
		{Name: "payload", DataType: "jsonb", AllowNull: true},
		{Name: "blob", DataType: "bytea", AllowNull: true},
	}))
}

// byID indexes a table's rows by their id column's text.
func (e *env) byID(table, col string) map[string]map[string]any {
	out := make(map[string]map[string]any)
	for _, r := range e.fake.Rows(table) {
		out[toString(r[col])] = r
	}
	return out
}

func toString(v any) string {
	switch x := v.(type) {
	case json.Number:
		return x.String()
	case string:
		return x
	}
	b, _ := json.Marshal(v)
	return string(b)
}
