package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// countingProxy stands between one daemon and the fake, so that the test
// knows which instance sent what.
type countingProxy struct {
	srv *httptest.Server
	mu  sync.Mutex
	log []string    // "METHOD path"
	at  []time.Time // when each arrived
}

func newCountingProxy(t *testing.T, upstream string) *countingProxy {
	t.Helper()
	u, err := url.Parse(upstream)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &countingProxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.log = append(p.log, r.Method+" "+r.URL.Path)
		p.at = append(p.at, time.Now())
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// count is the number of requests whose "METHOD path" contains part ("" for all).
func (p *countingProxy) count(part string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.log {
		if strings.Contains(l, part) {
			n++
		}
	}
	return n
}

func (p *countingProxy) recordWrites() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.log {
		if strings.HasSuffix(l, "/records") && !strings.HasPrefix(l, "GET ") {
			n++
		}
	}
	return n
}

const refreshVar = "E2E_FEISHU_REFRESH_TOKEN"

// standbyConfigYAML is an OAuth Feishu target whose tokens, with the
// checkpoint, live in the source database, shared by every instance.
func standbyConfigYAML(src database, stateDir, baseURL string) string {
	return fmt.Sprintf(`
source:
  dsn: %q
  slot: %s
  publication: %s
  status_interval: 1s
state:
  dir: %q
  store: postgres
  table: replicator.state
pipeline:
  flush_interval: 200ms
  batch_rows: 100
  snapshot_chunk_rows: 500
  shutdown_timeout: 5s
log:
  level: info
  format: json
http:
  listen: 127.0.0.1:0
targets:
  lark:
    type: feishu
    base_url: %s
    workspace_id: workspace_fake
    oauth: {app_id: cli_fake, app_secret: secret_fake, refresh_token: ${%s}}
    requests_per_second: 10
    request_timeout: 2s
mappings:
  - source: public.items
    target: lark
    table: items
`, src.dsn, src.name, src.name, stateDir, baseURL, refreshVar)
}

// instanceName is the application_name a daemon process gives its lock
// connection (app.InstanceID).
func instanceName(t *testing.T, pid int) string {
	host, err := os.Hostname()
	require.NoError(t, err)
	return fmt.Sprintf("replicator/%s/%d", host, pid)
}

// lockHolderName is the application_name of the session holding an
// advisory lock in the database, "" when none.
func lockHolderName(ctx context.Context, db *pgx.Conn) (string, error) {
	var name string
	err := db.QueryRow(ctx, `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&name)
	if err == pgx.ErrNoRows {
		return "", nil
	}
	return name, err
}

// standbyRig is what the standby tests share: the built daemon, a source
// seeded with 1,000 rows, an OAuth Feishu fake whose access tokens live
// 6 s (so each instance refreshes every 3 s), the daemons' environment
// with the first refresh token, and one log for every daemon, shown when
// the test fails.
type standbyRig struct {
	bin     string
	tg      target
	src     database
	fake    feishuFake
	env     []string
	dir     string
	logPath string
}

func newStandbyRig(t *testing.T, seed uint64) standbyRig {
	t.Helper()
	r := standbyRig{bin: buildDaemon(t), tg: feishuTarget(), dir: t.TempDir()}
	r.src = newDatabase(t, r.tg.zone)
	seedRows(t, r.src.db, 1000, r.tg.values)
	r.fake = newFeishuFake(t, feishufake.Options{TokenTTL: 6 * time.Second, Seed: seed}, itemsColumns)
	r.env = append(os.Environ(), refreshVar+"="+r.fake.RefreshToken())
	r.logPath = filepath.Join(r.dir, "daemons.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(r.logPath)
			t.Logf("daemon logs (end):\n%s", testkit.Tail(string(b), 64<<10))
		}
	})
	return r
}

// TestStandbyTakesOverAfterSIGKILL runs two daemons on one configuration
// with the state store in the source database and an OAuth Feishu target
// whose refresh tokens rotate every few seconds. The standby sends nothing
// while the active one works; the active one is killed with SIGKILL under
// load; the standby takes over, the mirror converges, and no refresh token
// is ever presented twice.
func TestStandbyTakesOverAfterSIGKILL(t *testing.T) {
	ctx := context.Background()
	rig := newStandbyRig(t, 11)
	bin, tg, src, db, fake, env, dir, logPath := rig.bin, rig.tg, rig.src, rig.src.db, rig.fake, rig.env, rig.dir, rig.logPath
	proxies := map[string]*countingProxy{}
	start := func(name string) *proc {
		proxies[name] = newCountingProxy(t, fake.URL())
		cfgPath := filepath.Join(dir, name+".yaml")
		require.NoError(t, os.WriteFile(cfgPath, []byte(standbyConfigYAML(src, filepath.Join(dir, name), proxies[name].srv.URL)), 0o600))
		return startDaemon(t, bin, cfgPath, env, logPath, name)
	}

	a := start("a")
	slotHolder := func() (int, bool) {
		var pid *int
		err := db.QueryRow(ctx, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", src.name).Scan(&pid)
		if err != nil || pid == nil {
			return 0, false
		}
		return *pid, true
	}
	waitFor(t, 60*time.Second, "the first daemon to stream", a.exited, func() bool { _, ok := slotHolder(); return ok })
	b := start("b")
	bName := instanceName(t, b.Cmd.Process.Pid)
	waitFor(t, 30*time.Second, "the second daemon to wait for the lock", b.exited, func() bool {
		var n int
		require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", bName).Scan(&n))
		return n > 0
	})
	holder, err := lockHolderName(ctx, db)
	require.NoError(t, err)
	require.Equal(t, instanceName(t, a.Cmd.Process.Pid), holder)

	writes := startWriting(t, src.dsn, tg.values, 5, 1001)
	time.Sleep(8 * time.Second)
	require.NoError(t, a.exited())
	require.NoError(t, b.exited())
	require.Positive(t, proxies["a"].recordWrites(), "the active daemon wrote nothing")
	require.Positive(t, proxies["a"].count("/oauth/token"), "the active daemon never refreshed its token")
	require.Zero(t, proxies["b"].count(""), "the standby sent requests while the other was active")

	walsender, _ := slotHolder()
	killedAt := time.Now()
	require.NoError(t, a.kill(10*time.Second))
	var lockedAt, streamingAt, wroteAt time.Duration
	waitFor(t, 60*time.Second, "the standby to take over and write", b.exited, func() bool {
		since := time.Since(killedAt)
		if lockedAt == 0 {
			if h, err := lockHolderName(ctx, db); err == nil && h == bName {
				lockedAt = since
			}
		}
		if pid, ok := slotHolder(); streamingAt == 0 && ok && pid != walsender {
			streamingAt = since
		}
		if wroteAt == 0 && proxies["b"].recordWrites() > 0 {
			wroteAt = since
		}
		return lockedAt != 0 && streamingAt != 0 && wroteAt != 0
	})
	time.Sleep(5 * time.Second)
	changes := writes.stop(t)
	waitMirror(t, db, tg, fake, mirrorTimeout, b.exited)

	reused := 0
	refreshes := 0
	for _, r := range fake.Requests() {
		if strings.HasSuffix(r.Path, "/oauth/token") {
			refreshes++
			if r.Code == 20073 {
				reused++
			}
		}
	}
	require.Zero(t, reused, "a refresh token was presented twice")
	log, err := os.ReadFile(logPath)
	require.NoError(t, err)
	require.NotContains(t, string(log), "WARNING: DATA RACE")
	t.Logf("takeover after SIGKILL: lock taken after %s, streaming after %s, first write after %s; %d changes; token refreshes: %d (a %d, b %d), reused refresh tokens: %d",
		lockedAt.Round(time.Millisecond), streamingAt.Round(time.Millisecond), wroteAt.Round(time.Millisecond), changes,
		refreshes, proxies["a"].count("/oauth/token"), proxies["b"].count("/oauth/token"), reused)
}

// waitFor polls cond until it holds, failing after timeout or when stop
// reports that the daemon died.
func waitFor(t *testing.T, timeout time.Duration, what string, stop func() error, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if err := stop(); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
