package e2e

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/internal/tcpproxy"
)

// recordWritesSince counts the record writes that arrived at or after since.
func (p *countingProxy) recordWritesSince(since time.Time) (n int, first time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, l := range p.log {
		if p.at[i].Before(since) || !strings.HasSuffix(l, "/records") || strings.HasPrefix(l, "GET ") {
			continue
		}
		if n == 0 {
			first = p.at[i]
		}
		n++
	}
	return n, first
}

// sentSince counts every request that arrived at or after since.
func (p *countingProxy) sentSince(since time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, at := range p.at {
		if !at.Before(since) {
			n++
		}
	}
	return n
}

// TestStandbyTakesOverAfterMachineLoss cuts the active instance off from
// everything, as when its machine is lost: every byte between it and
// PostgreSQL (the lock connection, SQL and replication) and between it and
// the target stops, and nothing is closed, so the server's sockets see a
// live, silent peer. The standby takes over (the server ends the silent
// lock session after idle_session_timeout, the standby ends the walsender
// left on the slot) while rows keep arriving, and the mirror converges with
// nothing lost. When the network comes back, the old instance, which
// fenced itself before the lock could be taken, sends nothing more to the
// target and waits as a standby.
//
// The old instance's target traffic passes a counting proxy on its side of
// the frozen link, so the test sees what it sent, not what arrived. It is
// cut off at a quiet moment (its writes confirmed): a request in flight at
// that moment would be held by the test's proxy, which acknowledges bytes
// it cannot deliver, and delivered at the thaw long after; a real network
// drops such packets and the sender's kernel gives up on them.
func TestStandbyTakesOverAfterMachineLoss(t *testing.T) {
	ctx := context.Background()
	rig := newStandbyRig(t, 12)
	bin, tg, src, db, fake, env, dir, logPath := rig.bin, rig.tg, rig.src, rig.src.db, rig.fake, rig.env, rig.dir, rig.logPath

	// Instance a's network: to PostgreSQL, and beyond its counting proxy to
	// the target.
	u, err := url.Parse(src.dsn)
	require.NoError(t, err)
	pgNet, err := tcpproxy.Start(u.Host)
	require.NoError(t, err)
	t.Cleanup(func() { pgNet.Close() })
	webNet, err := tcpproxy.Start(strings.TrimPrefix(fake.URL(), "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { webNet.Close() })
	u.Host = pgNet.Addr()
	q := u.Query()
	q.Set("connect_timeout", "3")
	u.RawQuery = q.Encode()
	srcA := src
	srcA.dsn = u.String()

	proxies := map[string]*countingProxy{}
	start := func(name string, s database, upstream string) *proc {
		proxies[name] = newCountingProxy(t, upstream)
		cfgPath := filepath.Join(dir, name+".yaml")
		require.NoError(t, os.WriteFile(cfgPath, []byte(standbyConfigYAML(s, filepath.Join(dir, name), proxies[name].srv.URL)), 0o600))
		return startDaemon(t, bin, cfgPath, env, logPath, name)
	}
	a := start("a", srcA, "http://"+webNet.Addr())
	aName := instanceName(t, a.Cmd.Process.Pid)
	waitFor(t, 60*time.Second, "the first daemon to take the lock", a.exited, func() bool {
		h, err := lockHolderName(ctx, db)
		return err == nil && h == aName
	})
	b := start("b", src, fake.URL())
	bName := instanceName(t, b.Cmd.Process.Pid)
	waitFor(t, 30*time.Second, "the second daemon to wait for the lock", b.exited, func() bool {
		var n int
		require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", bName).Scan(&n))
		return n > 0
	})

	writes := startWriting(t, src.dsn, tg.values, 7, 1001)
	time.Sleep(6 * time.Second)
	writes.stop(t) // a quiet moment: every write confirmed
	waitMirror(t, db, tg, fake, mirrorTimeout, a.exited)
	require.Positive(t, proxies["a"].recordWrites(), "the active daemon wrote nothing")
	require.Zero(t, proxies["b"].count(""), "the standby sent requests while the other was active")
	walsender := slotActivePID(t, src)
	require.NotZero(t, walsender, "the active daemon does not stream")

	frozenAt := time.Now()
	pgNet.Freeze()
	webNet.Freeze()
	writes = startWriting(t, src.dsn, tg.values, 8, 100_001)
	var lockedAt, streamingAt, wroteAt time.Duration
	waitFor(t, 60*time.Second, "the standby to take over and write", b.exited, func() bool {
		since := time.Since(frozenAt)
		if lockedAt == 0 {
			if h, err := lockHolderName(ctx, db); err == nil && h == bName {
				lockedAt = since
			}
		}
		if pid := slotActivePID(t, src); streamingAt == 0 && pid != 0 && pid != walsender {
			streamingAt = since
		}
		if n, _ := proxies["b"].recordWritesSince(frozenAt); wroteAt == 0 && n > 0 {
			wroteAt = since
		}
		return lockedAt != 0 && streamingAt != 0 && wroteAt != 0
	})
	_, bFirst := proxies["b"].recordWritesSince(frozenAt)
	sentFrozen := proxies["a"].sentSince(frozenAt)
	require.Zero(t, sentFrozen, "the cut-off instance sent requests it had no changes for")
	time.Sleep(3 * time.Second)

	thawedAt := time.Now()
	pgNet.Thaw()
	webNet.Thaw()
	waitFor(t, 60*time.Second, "the old instance to wait as a standby", a.exited, func() bool {
		var n int
		require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", aName).Scan(&n))
		return n > 0
	})
	time.Sleep(5 * time.Second)
	changes := writes.stop(t)
	waitMirror(t, db, tg, fake, mirrorTimeout, b.exited)
	require.NoError(t, a.exited(), "the old instance stopped instead of waiting as a standby")
	holder, err := lockHolderName(ctx, db)
	require.NoError(t, err)
	require.Equal(t, bName, holder)
	require.Zero(t, proxies["a"].sentSince(thawedAt), "the old instance sent requests after its network came back")

	reused := 0
	for _, r := range fake.Requests() {
		if strings.HasSuffix(r.Path, "/oauth/token") && r.Code == 20073 {
			reused++
		}
	}
	require.Zero(t, reused, "a refresh token was presented twice")
	log, err := os.ReadFile(logPath)
	require.NoError(t, err)
	require.NotContains(t, string(log), "WARNING: DATA RACE")
	require.Contains(t, string(log), "ended the replication connection a previous active instance left behind")
	t.Logf("takeover after machine loss: lock taken after %s, streaming after %s, first write after %s (%s after the freeze); %d changes during and after",
		lockedAt.Round(time.Millisecond), streamingAt.Round(time.Millisecond), wroteAt.Round(time.Millisecond), bFirst.Sub(frozenAt).Round(time.Millisecond), changes)
}

// slotActivePID is the server process streaming the test's slot, 0 when none.
func slotActivePID(t *testing.T, src database) int {
	var pid *int
	err := src.db.QueryRow(context.Background(), "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", src.name).Scan(&pid)
	if err != nil || pid == nil {
		return 0
	}
	return *pid
}
