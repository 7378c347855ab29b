//go:build soak

package soak

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicator-cdc/replicator/internal/pgtest"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// The outage benchmark's figures, as issue 10 asks: a Feishu target that
// answers in answerLatency and allows quota requests a second, under
// loadRate row changes a second.
const (
	answerLatency = 200 * time.Millisecond
	quota         = 10
	quotaRows     = quota * 500
	loadRate      = 1000
	loadTick      = 100 * time.Millisecond
)

const outageConfig = `source:
  dsn: %q
  slot: outage
  publication: outage
  status_interval: 1s
state:
  dir: %q
log:
  level: warn
  format: text
http:
  listen: %s
targets:
  lark:
    type: feishu
    base_url: %s
    workspace_id: workspace_fake
    user_access_token: ${OUTAGE_FEISHU_TOKEN}
    requests_per_second: 10
mappings:
  - {source: public.items, target: lark, table: items}
`

// TestOutage is make bench-outage: the daemon as a process mirrors a table
// under 1,000 row changes a second into a Feishu fake that answers in
// 200 ms and allows 10 requests a second; the target is down (every
// request answered 503) for REPLICATOR_OUTAGE (default 10m), then up. It
// prints the daemon's RSS each minute (flat: its spread), its peak, how
// long catching up took, what share of the request quota it used (the
// quota counts requests: rows the daemon coalesced need none), and each
// 5 seconds of the catch-up. Nothing is asserted about time; the mirror
// must equal the source at the end.
func TestOutage(t *testing.T) {
	outage := 10 * time.Minute
	if v := os.Getenv("REPLICATOR_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("REPLICATOR_OUTAGE=%q: %v (a Go duration such as 2m)", v, err)
		}
		outage = d
	}
	ctx := context.Background()
	dir := t.TempDir()
	bin := filepath.Join(dir, "replicator")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/replicator-cdc/replicator/cmd/replicator").CombinedOutput(); err != nil {
		t.Fatalf("build the daemon: %v\n%s", err, out)
	}
	cluster := pgtest.Start(t)
	dsn := cluster.NewDatabase(t)
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if _, err := db.Exec(ctx, `CREATE TABLE items (id bigint PRIMARY KEY, n bigint NOT NULL, body text NOT NULL)`); err != nil {
		t.Fatal(err)
	}

	fake := feishufake.New(feishufake.Options{RequestsPerSecond: quota})
	defer fake.Close()
	if err := fake.AddTable("items", []feishufake.Column{
		{Name: "id", DataType: "bigint", IsUnique: true},
		{Name: "n", DataType: "bigint"},
		{Name: "body", DataType: "text"},
	}); err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	var refused atomic.Int64 // requests answered 503 while down
	front := newSlowFront(t, fake.URL(), &down, &refused)

	listen := freeAddr(t)
	configPath := filepath.Join(dir, "replicator.yaml")
	config := fmt.Sprintf(outageConfig, dsn, filepath.Join(dir, "state"), listen, front)
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &daemon{
		bin: bin, config: configPath, logPath: filepath.Join(dir, "replicator.log"), metricsURL: "http://" + listen + "/metrics",
		env: []string{"OUTAGE_FEISHU_TOKEN=" + fake.AccessToken()},
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s\n--- daemon log (tail) ---\n%s", fmt.Sprintf(format, args...), d.logTail())
	}
	if err := d.start(); err != nil {
		fail("start the daemon: %v", err)
	}
	defer d.kill()

	loadCtx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan error, 1)
	var changes atomic.Int64
	go func() { loadDone <- steadyLoad(loadCtx, dsn, &changes) }()
	defer stopLoad()

	rss := &rssLog{}
	began := time.Now()
	wait := func(dur time.Duration) {
		t.Helper()
		end := time.Now().Add(dur)
		for time.Now().Before(end) {
			if ok, err := d.running(); !ok {
				fail("the daemon exited: %v", err)
			}
			if err := rss.sample(d.pid(), time.Since(began)); err != nil {
				fail("read the daemon's RSS: %v", err)
			}
			time.Sleep(time.Second)
		}
	}
	wait(30 * time.Second)
	t.Logf("outage: the target is down for %s under %d row changes/s", outage, loadRate)
	down.Store(true)
	changesAtDown := changes.Load()
	wait(outage)
	var upLSN string
	if err := db.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&upLSN); err != nil {
		t.Fatal(err)
	}
	backlog := changes.Load() - changesAtDown
	down.Store(false)
	up := time.Now()
	rss.outage = [2]time.Duration{up.Sub(began) - outage, up.Sub(began)}
	t.Logf("outage: the target is up again; %d row changes were committed while it was down", backlog)
	var caughtUp time.Duration
	for caughtUp == 0 {
		var done bool
		if err := db.QueryRow(ctx, `SELECT confirmed_flush_lsn >= $1::pg_lsn FROM pg_replication_slots WHERE slot_name = 'outage'`, upLSN).Scan(&done); err != nil {
			t.Fatal(err)
		}
		if done {
			caughtUp = time.Since(up)
			break
		}
		if time.Since(up) > outage+10*time.Minute {
			fail("not caught up %s after the target came back", time.Since(up).Round(time.Second))
		}
		wait(time.Second)
	}
	var delivered, requests int
	var firstOK time.Duration
	for _, r := range fake.Requests() {
		if r.Status == http.StatusOK && !r.Time.Before(up) && !r.Time.After(up.Add(caughtUp)) {
			if requests == 0 {
				firstOK = r.Time.Sub(up)
			}
			delivered += r.Rows
			requests++
		}
	}
	for _, line := range catchUpTimeline(fake.Requests(), up, caughtUp) {
		t.Log(line)
		fmt.Println(line)
	}
	wait(10 * time.Second)
	stopLoad()
	if err := <-loadDone; err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := mirrorEqual(ctx, db, fake, 3*time.Minute, func() { wait(2 * time.Second) }); err != nil {
		fail("%v", err)
	}
	if err := d.stop(60 * time.Second); err != nil {
		fail("the daemon did not stop cleanly: %v", err)
	}
	perSecond := float64(delivered) / caughtUp.Seconds()
	for _, line := range rss.minutes() {
		t.Log(line)
		fmt.Println(line)
	}
	low, high := rss.band(rss.outage[0], rss.outage[1])
	lateLow, lateHigh := rss.band((rss.outage[0]+rss.outage[1])/2, rss.outage[1])
	summary := fmt.Sprintf("outage summary: target down %s under %d row changes/s (%d changes while down, %d requests refused: %.2f/s), answers in %s, quota %d req/s; "+
		"RSS during the outage %.1f–%.1f MiB, in its second half %.1f–%.1f MiB (spread %.1f MiB), peak RSS (VmHWM) %.1f MiB; "+
		"caught up %s after the target came back (first write %s after): %d rows in %d requests (%.0f rows each) = %.0f rows/s = %.2f of %d rows/s; "+
		"catch-up share of the quota: %.1f req/s = %.2f of %d req/s (%.2f from the first write on)",
		outage, loadRate, backlog, refused.Load(), float64(refused.Load())/outage.Seconds(), answerLatency, quota, low, high, lateLow, lateHigh, lateHigh-lateLow, mib(rss.peakKiB),
		caughtUp.Round(100*time.Millisecond), firstOK.Round(100*time.Millisecond), delivered, requests, float64(delivered)/float64(max(1, requests)),
		perSecond, perSecond/quotaRows, quotaRows,
		float64(requests)/caughtUp.Seconds(), float64(requests)/caughtUp.Seconds()/quota, quota, float64(requests)/(caughtUp-firstOK).Seconds()/quota)
	t.Log(summary)
	fmt.Println(summary)
}

// catchUpTimeline describes each 5 seconds after the target came back
// until it caught up: the requests the target applied, their rows, and
// the share of the quota they used.
func catchUpTimeline(reqs []feishufake.Request, up time.Time, caughtUp time.Duration) []string {
	const step = 5 * time.Second
	n := int(caughtUp/step) + 1
	ok, rows, other := make([]int, n), make([]int, n), make([]int, n)
	for _, r := range reqs {
		at := r.Time.Sub(up)
		if at < 0 || at > caughtUp {
			continue
		}
		i := int(at / step)
		if r.Status == http.StatusOK {
			ok[i]++
			rows[i] += r.Rows
		} else {
			other[i]++
		}
	}
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, fmt.Sprintf("outage: catch-up %3ds–%3ds: %3d requests applied (%4.1f/s, %.2f of the quota), %5d rows (%.0f each), %d refused",
			i*5, i*5+5, ok[i], float64(ok[i])/step.Seconds(), float64(ok[i])/step.Seconds()/quota, rows[i], float64(rows[i])/float64(max(1, ok[i])), other[i]))
	}
	return out
}

// newSlowFront serves the fake behind a real network's latency, or, while
// down is set, answers every request 503 as an API in an outage does,
// counting them in refused.
func newSlowFront(t *testing.T, target string, down *atomic.Bool, refused *atomic.Int64) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			refused.Add(1)
			http.Error(w, "service unavailable", http.StatusServiceUnavailable)
			return
		}
		select {
		case <-time.After(answerLatency):
		case <-r.Context().Done():
			return
		}
		proxy.ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// steadyLoad commits loadRate row changes a second in loadTick
// transactions: 60% new rows, 40% updates of earlier ones.
func steadyLoad(ctx context.Context, dsn string, changes *atomic.Int64) error {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	per := int64(loadRate * loadTick / time.Second)
	inserts := per * 6 / 10
	var next int64 = 1
	tick := time.NewTicker(loadTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO items SELECT g, 0, repeat('x', 100) FROM generate_series($1::bigint, $2::bigint) g`, next, next+inserts-1)
		from := max(1, next-20*per)
		b.Queue(`UPDATE items SET n = n + 1 WHERE id >= $1 AND id < $2`, from, from+per-inserts)
		if err := c.SendBatch(ctx, b).Close(); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		next += inserts
		changes.Add(per)
	}
}

// mirrorEqual waits, up to limit, for the fake's table to equal the source.
func mirrorEqual(ctx context.Context, db *pgx.Conn, fake *feishufake.Server, limit time.Duration, pause func()) error {
	want := map[string]string{}
	rows, err := db.Query(ctx, `SELECT id::text, n::text FROM items`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id, n string
		if err := rows.Scan(&id, &n); err != nil {
			return err
		}
		want[id] = n
	}
	if err := rows.Err(); err != nil {
		return err
	}
	end := time.Now().Add(limit)
	for {
		got := map[string]string{}
		for _, r := range fake.Rows("items") {
			got[fmt.Sprint(r["id"])] = fmt.Sprint(r["n"])
		}
		diff := 0
		for id, n := range want {
			if got[id] != n {
				diff++
			}
		}
		if diff == 0 && len(got) == len(want) {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("the mirror differs from the source %s after the load stopped: %d of %d rows differ, %d rows in the target",
				limit, diff, len(want), len(got))
		}
		pause()
	}
}

// pid is the running process's id.
func (d *daemon) pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd.Process.Pid
}

// rssLog keeps the daemon's resident set size, sampled every second.
type rssLog struct {
	at      []time.Duration
	kib     []int64
	peakKiB int64
	// outage is when the target was down, from the start.
	outage [2]time.Duration
}

func (l *rssLog) sample(pid int, at time.Duration) error {
	status, err := procStatus(pid)
	if err != nil {
		return err
	}
	l.at = append(l.at, at)
	l.kib = append(l.kib, status["VmRSS"])
	l.peakKiB = max(l.peakKiB, status["VmHWM"])
	return nil
}

// minutes describes each minute's RSS: its least and most.
func (l *rssLog) minutes() []string {
	var out []string
	for i := 0; i < len(l.kib); {
		m := l.at[i] / time.Minute
		lo, hi := l.kib[i], l.kib[i]
		for ; i < len(l.kib) && l.at[i]/time.Minute == m; i++ {
			lo, hi = min(lo, l.kib[i]), max(hi, l.kib[i])
		}
		out = append(out, fmt.Sprintf("outage: minute %d: RSS %.1f–%.1f MiB", m+1, mib(lo), mib(hi)))
	}
	return out
}

// band is the least and most RSS sampled in [from, to), in MiB.
func (l *rssLog) band(from, to time.Duration) (low, high float64) {
	var lo, hi int64 = -1, 0
	for i, k := range l.kib {
		if l.at[i] < from || l.at[i] >= to {
			continue
		}
		if lo < 0 || k < lo {
			lo = k
		}
		hi = max(hi, k)
	}
	return mib(lo), mib(hi)
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// procStatus reads the kB figures of /proc/<pid>/status.
func procStatus(pid int) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if v, found := strings.CutSuffix(strings.TrimSpace(rest), " kB"); ok && found {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				out[name] = n
			}
		}
	}
	return out, sc.Err()
}
