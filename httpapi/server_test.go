package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/replicator-cdc/replicator/monitor"
)

// newTestServer returns a server over a fresh monitor and registry.
func newTestServer(t *testing.T, opts Options) (*Server, *monitor.Monitor) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := monitor.New(reg)
	opts.Monitor, opts.Gatherer = m, reg
	return New(opts), m
}

// get answers one request from the handler, without a network.
func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	res := rec.Result()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

func TestHealthz(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	res, body := get(t, s, "/healthz")
	if res.StatusCode != http.StatusOK || body != "ok\n" {
		t.Fatalf("GET /healthz = %d %q, want 200 \"ok\\n\"", res.StatusCode, body)
	}
}

func TestReadyz(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxLag   time.Duration
		phase    string
		lag      float64
		wantCode int
		wantBody string
	}{
		{"starting", 0, "starting", 0, 503, "not ready: phase is starting, not streaming\n"},
		{"snapshot", 0, "snapshot", 0.2, 503, "not ready: phase is snapshot, not streaming\n"},
		{"reconnecting", 0, "reconnecting", 0, 503, "not ready: phase is reconnecting, not streaming\n"},
		{"streaming", 0, "streaming", 0.4, 200, "ready: streaming, lag 0.4s\n"},
		{"lag just below the default", 0, "streaming", 299.9, 200, "ready: streaming, lag 4m 59s\n"},
		{"lag at the default", 0, "streaming", 300, 503, "not ready: lag 5m 00s is not below 5m0s\n"},
		{"lag over a custom limit", 30 * time.Second, "streaming", 42, 503, "not ready: lag 42s is not below 30s\n"},
		{"lag under a custom limit", time.Hour, "streaming", 600, 200, "ready: streaming, lag 10m 00s\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, m := newTestServer(t, Options{ReadyMaxLag: tc.maxLag})
			m.Phase(tc.phase)
			m.Position("0/16B3748", 100, tc.lag)
			res, body := get(t, s, "/readyz")
			if res.StatusCode != tc.wantCode || body != tc.wantBody {
				t.Fatalf("GET /readyz = %d %q, want %d %q", res.StatusCode, body, tc.wantCode, tc.wantBody)
			}
		})
	}
}

// TestReadyzFalseWhileStalled: a stream that hears nothing from the server
// is not ready, whatever its last lag, and says why; it is again once
// messages flow.
func TestReadyzFalseWhileStalled(t *testing.T) {
	s, m := newTestServer(t, Options{})
	m.Phase("streaming")
	m.Position("0/16B3748", 0, 0)
	m.Listening(40*time.Second, 30*time.Second)
	res, body := get(t, s, "/readyz")
	if res.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(body, "not ready: no message from PostgreSQL for 4") {
		t.Fatalf("GET /readyz = %d %q, want 503 \"not ready: no message from PostgreSQL for 40s\"", res.StatusCode, body)
	}
	if got := m.Snapshot().Phase; got != "stalled" {
		t.Fatalf("phase = %q while stalled, want stalled", got)
	}
	m.Listening(0, 30*time.Second)
	if res, body := get(t, s, "/readyz"); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /readyz after messages flow again = %d %q", res.StatusCode, body)
	}
	m.Listening(time.Minute, 30*time.Second)
	m.Phase("reconnecting")
	if res, body := get(t, s, "/readyz"); body != "not ready: phase is reconnecting, not streaming\n" {
		t.Fatalf("GET /readyz while reconnecting = %d %q", res.StatusCode, body)
	}
}

// TestReadyzDegradedWhileATableFails: a target table failing as a whole
// makes /readyz say so until the writer reports it recovered.
func TestReadyzDegradedWhileATableFails(t *testing.T) {
	s, m := newTestServer(t, Options{})
	m.AddTable("public.customers", "lark", "customers")
	m.Phase("streaming")
	m.Position("0/16B3748", 100, 0.4)
	m.TargetTable("lark", "customers", errors.New("code 2320001: table not found"))
	res, body := get(t, s, "/readyz")
	want := "degraded: target lark table customers is failing, its writes wait: code 2320001: table not found\n"
	if res.StatusCode != http.StatusServiceUnavailable || body != want {
		t.Fatalf("GET /readyz = %d %q, want 503 %q", res.StatusCode, body, want)
	}
	if got := m.Snapshot().Tables[0].Failing; got == "" {
		t.Fatal("the status snapshot does not show the failing table")
	}
	m.TargetTable("lark", "customers", nil)
	if res, body := get(t, s, "/readyz"); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /readyz after recovery = %d %q", res.StatusCode, body)
	}
}

func TestMetrics(t *testing.T) {
	s, m := newTestServer(t, Options{})
	m.AddTable("public.orders", "feishu", "orders")
	m.Confirmed("public.orders", "feishu", "orders", 7, 2)
	res, body := get(t, s, "/metrics")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", res.StatusCode)
	}
	for _, want := range []string{
		`replicator_rows_total{operation="upsert",source="public.orders",table="orders",target="feishu"} 7`,
		`replicator_rows_total{operation="delete",source="public.orders",table="orders",target="feishu"} 2`,
		`replicator_lag_seconds 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

func TestStatusJSON(t *testing.T) {
	s, m := newTestServer(t, Options{})
	m.AddTable("public.orders", "feishu", "orders")
	m.AddTable("public.customers", "gptbots", "customers")
	m.Phase("streaming")
	m.Position("0/16B3748", 2048, 1.5)
	m.Confirmed("public.orders", "feishu", "orders", 10, 3)
	m.SnapshotProgress("public.customers", 40, 100, false)
	m.DeadLettered("public.customers", "gptbots", "customers", 2)
	m.Error("public.customers", errors.New("rejected"))

	res, body := get(t, s, "/status.json")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /status.json = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	// Decoded loosely, so that the test pins the names clients rely on.
	var got struct {
		Now, Started, Phase, Acknowledged string
		LagBytes                          *int64   `json:"lag_bytes"`
		LagSeconds                        *float64 `json:"lag_seconds"`
		Tables                            []map[string]any
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Phase != "streaming" || got.Acknowledged != "0/16B3748" || got.LagBytes == nil || *got.LagBytes != 2048 ||
		got.LagSeconds == nil || *got.LagSeconds != 1.5 || got.Now == "" || got.Started == "" {
		t.Errorf("status header = %+v", got)
	}
	if len(got.Tables) != 2 {
		t.Fatalf("tables = %v, want 2", got.Tables)
	}
	c, o := got.Tables[0], got.Tables[1] // sorted by source
	for key, want := range map[string]any{
		"source": "public.customers", "target": "gptbots", "table": "customers", "upserts": 0.0, "deletes": 0.0,
		"snapshot_rows": 40.0, "snapshot_total": 100.0, "snapshot_done": false, "dead_letters": 2.0, "last_error": "rejected",
	} {
		if c[key] != want {
			t.Errorf("customers[%q] = %v, want %v", key, c[key], want)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, c["last_error_at"].(string)); err != nil {
		t.Errorf("customers.last_error_at: %v", err)
	}
	if o["upserts"] != 10.0 || o["deletes"] != 3.0 {
		t.Errorf("orders = %v", o)
	}
	if series, _ := o["throughput"].([]any); len(series) != 59 {
		t.Errorf("orders.throughput has %d values, want 59", len(series))
	}
}

func TestStatusJSONWithoutTables(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	_, body := get(t, s, "/status.json")
	if !strings.Contains(body, `"tables":[]`) {
		t.Errorf("status without tables = %s, want an empty tables list", body)
	}
}

func TestStatusPage(t *testing.T) {
	s, m := newTestServer(t, Options{})
	m.AddTable("public.orders", "feishu", "orders")
	m.AddTable("public.customers", "gptbots", "customers")
	m.Phase("streaming")
	m.Position("0/16B3748", 3<<20, 2.25)
	m.Confirmed("public.orders", "feishu", "orders", 1234567, 89)
	m.SnapshotProgress("public.orders", 5000, 5000, true)
	m.SnapshotProgress("public.customers", 2500, 10000, false)
	m.DeadLettered("public.customers", "gptbots", "customers", 4)

	res, body := get(t, s, "/")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET / = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`data-rendered="server"`,
		`<span id="phase" class="phase phase-streaming">streaming</span>`,
		`0/16B3748`, `3.0 MiB · 2.3s`,
		`public.orders`, `feishu/orders`, `public.customers`, `gptbots/customers`,
		`1,234,656`, `1,234,567 upserts · 89 deletes`,
		`✓ done`, `5,000 rows`,
		`<progress max="1" value="0.25"></progress><small>25% · 2,500 / ~10,000</small>`,
		`<span class="dead bad">4</span>`, `<span class="dead">0</span>`,
		`<polyline class="line" points="0.0,26.0 `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	// Self-contained: nothing loaded from elsewhere.
	for _, banned := range []string{"<link rel=\"stylesheet\"", "src=", "@import", "url("} {
		if strings.Contains(body, banned) {
			t.Errorf("status page contains %q", banned)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'sha256-") || strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
}

// A standby's page and readiness say what it waits for; streaming clears it.
func TestStatusPageStandby(t *testing.T) {
	s, m := newTestServer(t, Options{})
	m.Standby("waiting for the lock held by replicator/host-a/42 (server process 7, from 10.0.0.5)")
	_, body := get(t, s, "/")
	want := `<div id="standby" class="note">standby: waiting for the lock held by replicator/host-a/42 (server process 7, from 10.0.0.5)</div>`
	if !strings.Contains(body, want) {
		t.Errorf("status page lacks %q", want)
	}
	res, body := get(t, s, "/readyz")
	if res.StatusCode != http.StatusServiceUnavailable || body != "not ready: phase is standby, not streaming\n" {
		t.Errorf("GET /readyz = %d %q", res.StatusCode, body)
	}
	m.Phase("streaming")
	if _, body := get(t, s, "/"); !strings.Contains(body, `<div id="standby" class="note" hidden>`) {
		t.Error("the standby note stays after the instance became active")
	}
}

func TestStatusPageEscapes(t *testing.T) {
	s, m := newTestServer(t, Options{})
	const hostile = `<script>alert(1)</script>`
	m.AddTable(hostile, `"><img src=x onerror=alert(2)>`, `</td><b>`)
	m.Error(hostile, errors.New(`<img src=x onerror=alert(3)>`))
	m.Error("", errors.New(`daemon <script>alert(4)</script>`))
	m.Phase(`"><script>alert(5)</script>`)

	_, body := get(t, s, "/")
	for _, raw := range []string{"<script>alert", "<img", "<b>"} {
		if strings.Contains(body, raw) {
			t.Errorf("status page contains unescaped %q", raw)
		}
	}
	for _, escaped := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(3)&gt;", "daemon &lt;script&gt;alert(4)"} {
		if !strings.Contains(body, escaped) {
			t.Errorf("status page lacks %q", escaped)
		}
	}
}

func TestRoutes(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	if res, _ := get(t, s, "/nope"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope = %d, want 404", res.StatusCode)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/healthz", strings.NewReader("x")))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d, want 405", rec.Code)
	}
	for _, path := range []string{"/", "/healthz", "/readyz", "/status.json", "/metrics"} {
		res, _ := get(t, s, path)
		if res.Header.Get("Cache-Control") != "no-store" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s headers = %v", path, res.Header)
		}
	}
}

func TestServe(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	client := &http.Client{Timeout: 5 * time.Second}
	res, err := client.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz = %d", res.StatusCode)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := client.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Error("server still answers after shutdown")
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{count(0), "0"}, {count(999), "999"}, {count(1000), "1,000"}, {count(-1234567), "-1,234,567"},
		{bytesText(0), "0 B"}, {bytesText(1023), "1023 B"}, {bytesText(1280), "1.3 KiB"}, {bytesText(3 << 30), "3.0 GiB"},
		{bytesText(5 << 50), "5120.0 TiB"},
		{dur(0), "0s"}, {dur(0.25), "0.3s"}, {dur(9.96), "10.0s"}, {dur(59.9), "59s"}, {dur(61), "1m 01s"},
		{dur(7322), "2h 02m"}, {dur(90000), "1d 01h"},
		{rate(0), "0 rows/s"}, {rate(0.45), "0.5 rows/s"}, {rate(12.5), "13 rows/s"}, {rate(4321), "4,321 rows/s"},
		{lastRate(nil), "0 rows/s"},
		{clock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))), "02:04:05 UTC"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if p := spark([]float64{0, 5, 10}); p.Line != "0.0,26.0 60.0,14.0 120.0,2.0" || p.Area != "0,28 "+p.Line+" 120,28" {
		t.Errorf("spark = %+v", p)
	}
	if p := spark(nil); p.Line != "" {
		t.Errorf("spark(nil) = %+v", p)
	}
	for _, tc := range []struct {
		table monitor.Table
		want  snapshotView
	}{
		{monitor.Table{SnapshotRows: 10, SnapshotTotal: 8, SnapshotDone: true}, snapshotView{Done: true, Text: "10 rows"}},
		{monitor.Table{SnapshotRows: 12, SnapshotTotal: 8}, snapshotView{HasBar: true, Percent: 99, Value: 1, Text: "12 / ~8"}},
		{monitor.Table{SnapshotRows: 1, SnapshotTotal: 3}, snapshotView{HasBar: true, Percent: 33, Value: 1.0 / 3, Text: "1 / ~3"}},
		{monitor.Table{SnapshotRows: 1500}, snapshotView{Text: "1,500 rows copied"}},
		{monitor.Table{}, snapshotView{Text: "—"}},
	} {
		if got := snapshotProgress(tc.table); got != tc.want {
			t.Errorf("snapshotProgress(%+v) = %+v, want %+v", tc.table, got, tc.want)
		}
	}
}
