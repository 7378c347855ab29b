//go:build unix

package httpapi

import (
	"bytes"
	"context"
	"errors"
	"html"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/replicator-cdc/replicator/monitor"
)

// The browser tests run the status page in headless Chromium to check what
// people actually see. With --virtual-time-budget the page's timers run as
// fast as possible and the DOM is dumped once the budget is spent, pending
// requests being waited for; the page polls at 2 s of that time, so a
// budget of 3 s sees at least one poll's rendering. The budget only bounds
// time from below (a loaded machine lets more pass), so the server's own
// rendering is looked at with scripts blocked (serveWithoutScripts) rather
// than with a shorter budget.
const (
	chromiumBin = "/usr/bin/chromium"
	// Bounds each Chromium run; one takes about a second.
	chromiumTimeout = 60 * time.Second
	afterPoll       = "--virtual-time-budget=3000"
)

// needChromium fails the test when Chromium is missing, so that CI cannot
// pass without running it, unless REPLICATOR_SKIP_BROWSER=1 asks to skip.
func needChromium(t *testing.T) {
	t.Helper()
	if os.Getenv("REPLICATOR_SKIP_BROWSER") == "1" {
		t.Skip("REPLICATOR_SKIP_BROWSER=1")
	}
	if _, err := os.Stat(chromiumBin); err != nil {
		t.Fatalf("this test needs headless Chromium at %s (%v): run scripts/ensure-chromium.sh, or set REPLICATOR_SKIP_BROWSER=1 to skip it", chromiumBin, err)
	}
}

// chromium runs one headless Chromium on url and returns what it printed.
func chromium(t *testing.T, url string, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), chromiumTimeout)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir=" + t.TempDir(),
	}, flags...)
	cmd := exec.CommandContext(ctx, chromiumBin, append(args, url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Chromium forks helpers; on timeout the whole group it leads goes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(flags, " "), err, stderr.String())
	}
	return stdout.String()
}

// serve runs src's page on a loopback port until the test ends or stop is
// called, and returns its address.
func serve(t *testing.T, src snapshotter) (url string, stop context.CancelFunc) {
	t.Helper()
	s := newServer(src, Options{Gatherer: prometheus.NewRegistry()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return "http://" + ln.Addr().String() + "/", cancel
}

// serveWithoutScripts is serve for a browser without JavaScript: an extra
// Content-Security-Policy forbids every script, so the page shows only what
// the server rendered.
func serveWithoutScripts(t *testing.T, src snapshotter) string {
	t.Helper()
	s := newServer(src, Options{Gatherer: prometheus.NewRegistry()})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.ServeHTTP(&scriptBlocker{ResponseWriter: w}, r)
	}))
	t.Cleanup(ts.Close)
	return ts.URL + "/"
}

// scriptBlocker adds its policy when the header goes out, after the page
// handler set its own: a browser enforces both.
type scriptBlocker struct {
	http.ResponseWriter
	wrote bool
}

func (b *scriptBlocker) WriteHeader(code int) {
	if !b.wrote {
		b.wrote = true
		b.Header().Add("Content-Security-Policy", "script-src 'none'")
	}
	b.ResponseWriter.WriteHeader(code)
}

func (b *scriptBlocker) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.ResponseWriter.Write(p)
}

// armedSource reads a monitor and, once armed, changes it right after the
// next snapshot: the one the page is rendered from, so that only the page's
// script can show the change.
type armedSource struct {
	m      *monitor.Monitor
	armed  atomic.Bool
	change func(*monitor.Monitor)
}

func (a *armedSource) Snapshot() monitor.Snapshot {
	s := a.m.Snapshot()
	if a.armed.CompareAndSwap(true, false) {
		a.change(a.m)
	}
	return s
}

// text is the visible text of an HTML fragment, on one line.
func text(fragment string) string {
	noTags := regexp.MustCompile(`<[^>]*>`).ReplaceAllString(fragment, " ")
	return strings.Join(strings.Fields(html.UnescapeString(noTags)), " ")
}

// row is the markup of a table's row in a dumped DOM.
func row(t *testing.T, dom, source string) string {
	t.Helper()
	re := regexp.MustCompile(`(?s)<tr data-source="` + regexp.QuoteMeta(html.EscapeString(source)) + `">.*?</tr>`)
	m := re.FindString(dom)
	if m == "" {
		t.Fatalf("no row for %s in:\n%s", source, dom)
	}
	return m
}

// app is the markup of the page's #app element in a dumped DOM.
func app(t *testing.T, dom string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<div id="app".*?</footer>`).FindString(dom)
	if m == "" {
		t.Fatalf("no #app in:\n%s", dom)
	}
	return m
}

func wantIn(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}

func TestBrowserStatusPage(t *testing.T) {
	needChromium(t)
	start := time.Now()
	m := monitor.New(prometheus.NewRegistry())
	m.AddTable("public.orders", "feishu", "orders")
	m.AddTable("public.customers", "gptbots", "customers")
	m.Phase("streaming")
	m.Position("0/16B3748", 2048, 0.4)
	m.Confirmed("public.orders", "feishu", "orders", 1200, 34)
	m.Confirmed("public.customers", "gptbots", "customers", 56, 0)
	m.SnapshotProgress("public.orders", 1200, 1200, true)
	m.SnapshotProgress("public.customers", 5000, 20000, false)
	src := &armedSource{m: m, change: func(m *monitor.Monitor) {
		m.Confirmed("public.orders", "feishu", "orders", 800, 0)
		m.DeadLettered("public.customers", "gptbots", "customers", 3)
		m.Error("public.customers", errors.New(`feishu: HTTP 429 <img src=x onerror=alert(1)> throttled`))
		m.Position("0/16B9000", 4096, 1.5)
	}}
	url, _ := serve(t, src)

	// First as the server renders it, which is all a browser without
	// JavaScript shows.
	dom := chromium(t, serveWithoutScripts(t, src), "--dump-dom")
	wantIn(t, "page without scripts", app(t, dom), `data-rendered="server"`, `0/16B3748`, `2.0 KiB · 0.4s`)
	wantIn(t, "orders row", text(row(t, dom, "public.orders")),
		// The rate between them depends on the clock: it is the last complete
		// 5 s slot's.
		"public.orders → feishu/orders 1,234 1,200 upserts · 34 deletes ", " rows/s ✓ done 1,200 rows 0 —")
	wantIn(t, "customers row", text(row(t, dom, "public.customers")),
		"public.customers → gptbots/customers 56 56 upserts · 0 deletes", "25% · 5,000 / ~20,000 0 —")

	src.armed.Store(true)
	dom = chromium(t, url, afterPoll, "--dump-dom")
	if src.armed.Load() {
		t.Fatal("Chromium did not request the page")
	}
	wantIn(t, "page after the first poll", app(t, dom), `data-rendered="js"`, `0/16B9000`, `4.0 KiB · 1.5s`)
	wantIn(t, "orders row", text(row(t, dom, "public.orders")), "feishu/orders 2,034 2,000 upserts · 34 deletes")
	customers := row(t, dom, "public.customers")
	wantIn(t, "customers row", customers, `<span class="dead bad">3</span>`)
	wantIn(t, "customers row", text(customers), "feishu: HTTP 429 <img src=x onerror=alert(1)> throttled")
	if strings.Contains(dom, "<img") {
		t.Errorf("the script rendered an error message as markup:\n%s", customers)
	}
	t.Logf("browser test took %s", time.Since(start).Round(time.Millisecond))
}

// TestBrowserShowsFailedUpdate stops the server once it has answered the
// page: the poll fails, and the page must say so rather than keep showing
// the old figures as if they were current.
func TestBrowserShowsFailedUpdate(t *testing.T) {
	needChromium(t)
	src := &armedSource{m: monitor.New(prometheus.NewRegistry())}
	url, stop := serve(t, src)
	// Only cancels; the shutdown waits for the page's request to finish.
	src.change = func(*monitor.Monitor) { stop() }
	src.armed.Store(true)
	page := app(t, chromium(t, url, afterPoll, "--dump-dom"))
	wantIn(t, "page after a failed poll", page, `data-rendered="server"`, `class="stale"`)
	wantIn(t, "footer after a failed poll", text(page), "· update failed: Failed to fetch")
}

// TestBrowserScriptRendersLikeServer checks that the script's re-rendering
// of unchanged figures changes nothing visible: same text, same elements
// with the same attributes (data-rendered aside).
func TestBrowserScriptRendersLikeServer(t *testing.T) {
	needChromium(t)
	src := fixedSource(demoSnapshot())
	url, _ := serve(t, src)
	server := app(t, chromium(t, serveWithoutScripts(t, src), "--dump-dom"))
	script := app(t, chromium(t, url, afterPoll, "--dump-dom"))
	wantIn(t, "server rendering", server, `data-rendered="server"`)
	wantIn(t, "script rendering", script, `data-rendered="js"`)
	if a, b := text(server), text(script); a != b {
		t.Errorf("text differs:\nserver: %s\nscript: %s", a, b)
	}
	a, b := elements(server), elements(script)
	for i := range max(len(a), len(b)) {
		if i >= len(a) || i >= len(b) || a[i] != b[i] {
			t.Fatalf("element %d differs:\nserver: %v\nscript: %v", i, a[i:min(i+3, len(a))], b[i:min(i+3, len(b))])
		}
	}
}

// elements lists a fragment's opening tags with their attributes sorted.
func elements(fragment string) []string {
	openRE := regexp.MustCompile(`<(\w+)([^>]*)>`)
	attrRE := regexp.MustCompile(`([\w:-]+)="([^"]*)"`)
	var out []string
	for _, tag := range openRE.FindAllStringSubmatch(fragment, -1) {
		var attrs []string
		for _, a := range attrRE.FindAllStringSubmatch(tag[2], -1) {
			if a[1] != "data-rendered" {
				attrs = append(attrs, a[1]+"="+a[2])
			}
		}
		slices.Sort(attrs)
		out = append(out, tag[1]+" "+strings.Join(attrs, " "))
	}
	return out
}

// TestScreenshot writes a screenshot of the page with demo figures to the
// file REPLICATOR_SCREENSHOT names (relative to this package's directory),
// for docs/status-page.png:
//
//	REPLICATOR_SCREENSHOT=../docs/status-page.png go test -run TestScreenshot ./httpapi/
func TestScreenshot(t *testing.T) {
	path := os.Getenv("REPLICATOR_SCREENSHOT")
	if path == "" {
		t.Skip("set REPLICATOR_SCREENSHOT to the PNG file to write")
	}
	needChromium(t)
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	url := serveWithoutScripts(t, fixedSource(demoSnapshot()))
	chromium(t, url, "--hide-scrollbars", "--window-size=1200,800", "--screenshot="+abs)
	if st, err := os.Stat(abs); err != nil || st.Size() == 0 {
		t.Fatalf("no screenshot at %s: %v", abs, err)
	}
}

// fixedSource always answers the same figures.
type fixedSource monitor.Snapshot

func (f fixedSource) Snapshot() monitor.Snapshot { return monitor.Snapshot(f) }

// demoSnapshot is a daemon three quarters of an hour into its initial
// snapshot, with figures like a real one's. It is built directly because a
// Monitor's throughput series only fills in real time.
func demoSnapshot() monitor.Snapshot {
	now := time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	// wave is a deterministic, irregular-looking throughput series.
	wave := func(base, swing, phase float64) []float64 {
		s := make([]float64, 59)
		for i := range s {
			x := float64(i)
			s[i] = math.Max(0, base*(1+swing*math.Sin(x/6+phase)+swing/2*math.Sin(x*1.3+phase)))
		}
		return s
	}
	return monitor.Snapshot{
		Now: now, Started: now.Add(-47*time.Minute - 12*time.Second), Phase: "snapshot",
		Acknowledged: "3/1A3F5C28", LagBytes: 48_312_004, LagSeconds: 134.2,
		Tables: []monitor.Table{
			{Source: "billing.invoices", Target: "gptbots", Table: "invoices", Upserts: 182_340, Deletes: 12,
				SnapshotRows: 181_002, SnapshotTotal: 180_000, SnapshotDone: true, Throughput: wave(6.2, 0.5, 1),
				LastError:   "gptbots: HTTP 429 Too Many Requests: rate limit exceeded, retrying in 2s",
				LastErrorAt: now.Add(-12 * time.Second)},
			{Source: "public.audit_log", Target: "feishu", Table: "audit_log", SnapshotTotal: 310_000,
				Throughput: make([]float64, 59)},
			{Source: "public.customers", Target: "feishu", Table: "customers", Upserts: 96_114, Deletes: 412,
				SnapshotRows: 95_870, SnapshotTotal: 96_000, SnapshotDone: true, DeadLetters: 3, Throughput: wave(2.4, 0.8, 3),
				LastError:   `feishu: record rejected: field "email": "n/a" is not a valid email (code 1254045)`,
				LastErrorAt: now.Add(-4*time.Minute - 31*time.Second)},
			{Source: "public.order_items", Target: "feishu", Table: "order_items", Upserts: 2_413_009,
				SnapshotRows: 2_413_009, SnapshotTotal: 5_800_000, Throughput: wave(880, 0.15, 0)},
			{Source: "public.orders", Target: "feishu", Table: "orders", Upserts: 1_284_392, Deletes: 8_211,
				SnapshotRows: 1_201_554, SnapshotTotal: 1_190_000, SnapshotDone: true, Throughput: wave(64, 0.35, 2)},
		},
	}
}
