//go:build soak

package soak

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicator-cdc/replicator/internal/pgtest"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

// faultRate is the share of target writes that fail at random, all soak
// long: server errors, dropped connections, answers lost after applying,
// throttling.
const faultRate = 0.05

const configTemplate = `source:
  dsn: %q
  slot: soak
  publication: soak
  status_interval: 1s
state:
  dir: %q
pipeline:
  flush_interval: 200ms
  shutdown_timeout: 20s
log:
  level: info
  format: text
http:
  listen: %s
targets:
  lark:
    type: feishu
    base_url: %s
    workspace_id: workspace_fake
    user_access_token: ${SOAK_FEISHU_TOKEN}
    requests_per_second: 10
    request_timeout: 2s
  bots:
    type: gptbots
    base_url: %s
    api_key: ${SOAK_GPTBOTS_KEY}
    requests_per_second: 5
    request_timeout: 2s
mappings:
  - {source: public.pgbench_accounts, target: lark, table: accounts}
  - {source: public.pgbench_history, target: lark, table: history}
  - {source: public.pgbench_tellers, target: bots, table: "` + tellersTable + `"}
  - {source: public.pgbench_branches, target: bots, table: "` + branchesTable + `"}
`

// TestSoak is make soak: see the package comment.
func TestSoak(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bin := filepath.Join(dir, "replicator")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/replicator-cdc/replicator/cmd/replicator").CombinedOutput(); err != nil {
		t.Fatalf("build the daemon: %v\n%s", err, out)
	}
	cluster := pgtest.Start(t, pgtest.Options{Settings: map[string]string{"wal_sender_timeout": walSenderTimeout.String()}})
	dsn := cluster.NewDatabase(t)
	proxy, daemonDSN := behindProxy(t, dsn)
	admin := func() *pgx.Conn {
		var lastErr error
		for range 100 {
			c, err := pgx.Connect(ctx, dsn)
			if err == nil {
				return c
			}
			lastErr = err
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("connect to the source: %v", lastErr)
		return nil
	}
	db := admin()
	if _, err := db.Exec(ctx, schemaSQL); err != nil {
		t.Fatal(err)
	}
	db.Close(ctx)

	lark := feishufake.New(feishufake.Options{Seed: 1})
	defer lark.Close()
	bots := gptbotsfake.New(gptbotsfake.Options{Seed: 2})
	defer bots.Close()
	for _, m := range mirrors {
		var err error
		if m.feishu != nil {
			err = lark.AddTable(m.table, m.feishu)
		} else {
			err = bots.AddTable(m.table, m.gptbots)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	faults := func(rate float64) {
		lark.SetFaultRate(rate, feishufake.FaultServerError, feishufake.FaultDrop, feishufake.FaultLostAnswer, feishufake.FaultThrottle)
		bots.SetFaultRate(rate, gptbotsfake.FaultServerError, gptbotsfake.FaultBadGateway, gptbotsfake.FaultDrop, gptbotsfake.FaultLostAnswer, gptbotsfake.FaultThrottle)
	}
	faults(faultRate)

	listen := freeAddr(t)
	configPath := filepath.Join(dir, "replicator.yaml")
	config := fmt.Sprintf(configTemplate, daemonDSN, filepath.Join(dir, "state"), listen, lark.URL(), bots.URL())
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &daemon{
		bin: bin, config: configPath, logPath: filepath.Join(dir, "replicator.log"), metricsURL: "http://" + listen + "/metrics",
		env: []string{"SOAK_FEISHU_TOKEN=" + lark.AccessToken(), "SOAK_GPTBOTS_KEY=" + bots.Options().APIKey},
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s\n--- daemon log (tail) ---\n%s", fmt.Sprintf(format, args...), d.logTail())
	}
	if err := d.start(); err != nil {
		fail("start the daemon: %v", err)
	}

	loadCtx, stopLoad := context.WithCancel(ctx)
	var loads []*load
	var wg sync.WaitGroup
	for i := range 2 {
		l := newLoad(dsn, uint64(i+1), int64(100_000*(i+1)))
		loads = append(loads, l)
		wg.Add(1)
		go func() { defer wg.Done(); l.run(loadCtx) }()
	}
	defer func() { stopLoad(); wg.Wait() }()

	// wait lets time pass while sampling the daemon and checking that it
	// is alive: it must never exit on its own.
	wait := func(dur time.Duration) {
		t.Helper()
		end := time.Now().Add(dur)
		for time.Now().Before(end) {
			if ok, err := d.running(); !ok {
				fail("the daemon exited on its own: %v", err)
			}
			d.sample()
			time.Sleep(time.Second)
		}
	}
	restartServer := func(mode string) {
		t.Helper()
		t.Logf("soak: PostgreSQL restart, %s", mode)
		began := time.Now()
		if err := cluster.Restart(ctx, mode); err != nil {
			fail("restart PostgreSQL (%s): %v", mode, err)
		}
		t.Logf("soak: PostgreSQL back after %s", time.Since(began).Round(100*time.Millisecond))
	}
	killDaemon := func(down time.Duration) {
		t.Helper()
		t.Logf("soak: kill -9 of the daemon")
		d.kill()
		time.Sleep(down)
		if err := d.start(); err != nil {
			fail("restart the daemon: %v", err)
		}
	}
	terminateConnections := func() {
		t.Helper()
		t.Logf("soak: pg_terminate_backend of every daemon connection (walsender and SQL)")
		c := admin()
		defer c.Close(ctx)
		var n int
		if err := c.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'replicator' AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
			fail("terminate the daemon's connections: %v", err)
		}
		t.Logf("soak: terminated %d connections", n)
	}

	started := time.Now()
	wait(20 * time.Second)
	killDaemon(time.Second)
	wait(20 * time.Second)
	restartServer("fast")
	wait(20 * time.Second)
	restartServer("immediate")
	wait(20 * time.Second)
	t.Logf("soak: target outage, every write fails for 20s")
	faults(1)
	wait(20 * time.Second)
	faults(faultRate)
	wait(10 * time.Second)
	terminateConnections()
	wait(15 * time.Second)
	t.Logf("soak: network to PostgreSQL frozen for %s (dead-peer bound %s)", frozenFor, walSenderTimeout)
	_, reconnectsBefore, _ := d.figures()
	proxy.Freeze()
	wait(frozenFor)
	proxy.Thaw()
	wait(20 * time.Second)
	if _, n, _ := d.figures(); n <= reconnectsBefore {
		fail("the daemon did not drop the frozen connection: no reconnect during or after the freeze")
	}
	t.Logf("soak: kill -9 of the daemon, and an immediate PostgreSQL restart while it is down")
	d.kill()
	restartServer("immediate")
	if err := d.start(); err != nil {
		fail("restart the daemon: %v", err)
	}
	wait(20 * time.Second)
	t.Logf("soak: PostgreSQL stopped for 10s, the daemon killed and started again while it is down")
	began := time.Now()
	if err := cluster.Shutdown("fast"); err != nil {
		fail("stop PostgreSQL: %v", err)
	}
	t.Logf("soak: PostgreSQL stopped after %s", time.Since(began).Round(100*time.Millisecond))
	wait(3 * time.Second)
	killDaemon(time.Second)
	wait(6 * time.Second)
	if err := cluster.StartAgain(ctx); err != nil {
		fail("start PostgreSQL: %v", err)
	}
	wait(20 * time.Second)

	stopLoad()
	wg.Wait()
	loadEnd := time.Now()
	var commits, failures int64
	for _, l := range loads {
		commits += l.commits.Load()
		failures += l.failures.Load()
	}
	t.Logf("soak: load stopped after %s: %d transactions committed, %d failed", loadEnd.Sub(started).Round(time.Second), commits, failures)

	db = admin()
	defer db.Close(ctx)
	source := map[string]rows{}
	for _, m := range mirrors {
		r, err := sourceRows(ctx, db, m)
		if err != nil {
			fail("read %s: %v", m.source, err)
		}
		source[m.source] = r
	}
	var problems []string
	deadline := loadEnd.Add(10 * time.Minute)
	for {
		problems = problems[:0]
		for _, m := range mirrors {
			if p := diff(source[m.source], targetRows(lark, bots, m)); p != "" {
				problems = append(problems, m.source+": "+p)
			}
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		wait(2 * time.Second)
	}
	if len(problems) > 0 {
		fail("mirrors still differ 10 minutes after the load stopped:\n%s", strings.Join(problems, "\n"))
	}
	catchUp := time.Since(loadEnd)
	if err := d.stop(60 * time.Second); err != nil {
		fail("the daemon did not stop cleanly on SIGTERM: %v", err)
	}
	starts, reconnects, peak := d.figures()
	summary := fmt.Sprintf("soak summary: %s of load, %d transactions (%d failed while the server was away); every mirror equals its source (",
		loadEnd.Sub(started).Round(time.Second), commits, failures)
	for i, m := range mirrors {
		if i > 0 {
			summary += ", "
		}
		summary += fmt.Sprintf("%s %d rows", m.source, len(source[m.source]))
	}
	var calls, faulted int
	for _, r := range lark.Requests() {
		calls++
		if r.Fault != feishufake.FaultNone {
			faulted++
		}
	}
	for _, r := range bots.Requests() {
		calls++
		if r.Fault != gptbotsfake.FaultNone {
			faulted++
		}
	}
	summary += fmt.Sprintf("); target calls %d, %d of them failed by injected faults; daemon restarts %d (kill -9), network frozen once for %s (dead-peer bound %s), source reconnects %d, peak RSS %.1f MiB, catch-up %s after the load stopped",
		calls, faulted, starts-1, frozenFor, walSenderTimeout, reconnects, float64(peak)/1024, catchUp.Round(100*time.Millisecond))
	t.Log(summary)
	fmt.Println(summary)
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
