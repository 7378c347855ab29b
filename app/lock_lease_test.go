package app

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/internal/pgtest"
	"github.com/replicator-cdc/replicator/internal/tcpproxy"
)

type countingWriter struct{ writes int }

func (*countingWriter) Prepare(context.Context, []replicator.TableSpec) error { return nil }
func (c *countingWriter) Write(context.Context, replicator.Batch) ([]replicator.Rejection, error) {
	c.writes++
	return nil, nil
}

// A lease whose time is up refuses writes at once, before its timer has
// run (a process paused past its lease must not send what it held), and an
// answered query renews it.
func TestLeaseEndsByTheClock(t *testing.T) {
	l := newLease(nil, "test", slog.New(slog.DiscardHandler), time.Now().Add(-leaseTTL))
	defer l.expire.Stop()
	w := &countingWriter{}
	_, err := fencedWriter{w: w, l: l}.Write(context.Background(), replicator.Batch{})
	require.ErrorIs(t, err, errLockLost)
	require.Zero(t, w.writes)

	fresh := newLease(nil, "test", slog.New(slog.DiscardHandler), time.Now().Add(-leaseTTL+time.Second))
	defer fresh.expire.Stop()
	fresh.renew(time.Now())
	require.NoError(t, fresh.lost())
	require.Greater(t, fresh.remaining(), leaseTTL-time.Second)
	_, err = fencedWriter{w: w, l: fresh}.Write(context.Background(), replicator.Batch{})
	require.NoError(t, err)
	require.Equal(t, 1, w.writes)
}

// The lease tells a Feishu token refresh how long it lasts (feishu.Lease),
// and that it has ended: by the clock, or by the instance giving the lock
// up at the end of its turn.
func TestLeaseLeftForATokenRefresh(t *testing.T) {
	ended := newLease(nil, "test", slog.New(slog.DiscardHandler), time.Now().Add(-leaseTTL))
	defer ended.expire.Stop()
	_, err := ended.Left()
	require.ErrorIs(t, err, errLockLost)

	fresh := newLease(nil, "test", slog.New(slog.DiscardHandler), time.Now())
	defer fresh.expire.Stop()
	left, err := fresh.Left()
	require.NoError(t, err)
	require.Positive(t, left)
	require.LessOrEqual(t, left, leaseTTL)
	fresh.lose(context.Canceled)
	_, err = fresh.Left()
	require.ErrorIs(t, err, errTurnOver)
}

// The lock connection of an instance whose network goes silent (a proxy
// that passes no byte and no close, so the server's socket stays open):
// the instance's lease ends while the server still holds its lock, and
// the server frees the lock later, on its own.
func TestLeaseEndsBeforeTheServerFreesTheLock(t *testing.T) {
	c := pgtest.Start(t)
	ctx := context.Background()
	direct, err := c.CreateDatabase(ctx, "lease")
	require.NoError(t, err)
	u, err := url.Parse(direct)
	require.NoError(t, err)
	proxy, err := tcpproxy.Start(u.Host)
	require.NoError(t, err)
	t.Cleanup(func() { proxy.Close() })
	u.Host = proxy.Addr()
	conn, err := connectLock(ctx, u.String(), "lease-test", true)
	require.NoError(t, err)
	key := LockKey("lease")
	var pid int32
	require.NoError(t, conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid))
	asked := time.Now()
	var got bool
	require.NoError(t, conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got))
	require.True(t, got)

	observer, err := pgx.Connect(ctx, direct)
	require.NoError(t, err)
	t.Cleanup(func() { observer.Close(context.Background()) })
	holds := func() bool {
		var n int
		require.NoError(t, observer.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = $1", pid).Scan(&n))
		return n > 0
	}
	require.True(t, holds())

	l := newLease(conn, "lease-test", slog.New(slog.DiscardHandler), asked)
	var heldAtFence bool
	var fencedAfter time.Duration
	var frozenAt time.Time
	err = l.hold(ctx, func(actx context.Context, l *lease) error {
		time.Sleep(2 * lockCheckInterval) // a few answered checks first
		require.NoError(t, l.lost())
		frozenAt = time.Now()
		proxy.Freeze()
		select {
		case <-actx.Done():
		case <-time.After(60 * time.Second):
			return errors.New("the lease did not end within 60 s of the freeze")
		}
		fencedAfter = time.Since(frozenAt)
		heldAtFence = holds()
		return nil
	})
	require.NoError(t, err)
	require.ErrorIs(t, l.lost(), errLockLost)
	require.True(t, heldAtFence, "the lease ended only after the server had freed the lock: another instance could have written meanwhile")

	deadline := time.Now().Add(60 * time.Second)
	for holds() {
		require.True(t, time.Now().Before(deadline), "the server still holds the silent session's lock 60 s after the freeze")
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("lease ended %s after the freeze, the server freed the lock %s after it (idle_session_timeout %s, lease %s)",
		fencedAfter.Round(time.Millisecond), time.Since(frozenAt).Round(time.Millisecond), lockIdleTimeout, leaseTTL)
}
