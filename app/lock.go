package app

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/targets/backoff"
)

// Several instances may run on one configuration; PostgreSQL itself picks
// the one that works. The active instance holds a session advisory lock,
// keyed by the slot, on a connection of its own for as long as it works.
// The others are standbys: they read nothing from the slot and write
// nothing anywhere, and try to take the lock every standbyRetry.
//
// When the active instance dies, its lock goes with its server session:
// at once when the process is killed (the kernel closes its socket), and
// within lockIdleTimeout when the machine or the network is lost.
//
// The timing argument that keeps two instances from writing at once when
// the active one is cut off (its packets dropped, nothing closed):
//   - The server ends the lock session, and so frees the lock, only after
//     the session sat idle for lockIdleTimeout (idle_session_timeout): it
//     waited that long for a query since it answered the last one. The
//     client sent that query earlier still, at some time t, so the lock is
//     free no sooner than t + lockIdleTimeout.
//   - The active instance holds a lease that lasts leaseTTL from the moment
//     it sent the last query on the lock connection that was answered (the
//     pings of watch, every lockCheckInterval, and the state store's
//     queries). Such a query was sent at or before t, so the lease ends at
//     or before t + leaseTTL: lockIdleTimeout - leaseTTL earlier than the
//     lock can be free. Every write and state save checks the lease against
//     the clock first, and in-flight requests are cut when it ends.
//   - The instance that then takes the lock waits takeoverGrace more before
//     it writes, time for a request the old one had sent to arrive or fail:
//     the writers' connections give unacknowledged bytes up after
//     targetUserTimeout (targetdial.go), which fits in what is left.
// So the old instance has stopped writing at least lockIdleTimeout -
// leaseTTL + takeoverGrace (5 s) before the new one starts, with the two
// machines' clocks only measuring intervals. The TCP settings of
// lockKeepalive bound the other ways a session can stall on a dead peer
// (in a query, or sending an answer), and servers older than 14 (without
// idle_session_timeout) rely on them alone: their bound is longer than
// leaseTTL too.
//
// Holding the lock, an instance also checks its connection every
// lockCheckInterval; when a check fails it stops writing at once (its
// writers refuse, in-flight requests are cut) and becomes a standby again.

// errLockLost ends an instance's turn as the active one.
var errLockLost = errors.New("lost the advisory lock that makes this instance the active one")

const (
	// standbyRetry is how often a standby tries to take the lock.
	standbyRetry = time.Second
	// lockCheckInterval and lockCheckTimeout: how often the active
	// instance pings its lock connection (which renews the lease), and how
	// long a ping may take before the connection counts as dead.
	lockCheckInterval = time.Second
	lockCheckTimeout  = 3 * time.Second
	// leaseTTL is how long after sending its last answered query on the
	// lock connection the active instance may still write.
	leaseTTL = 4 * time.Second
	// lockIdleTimeout is the lock session's idle_session_timeout: the
	// bound within which the server frees the lock of a silent instance.
	// It must exceed leaseTTL (see above); takeover after a machine loss
	// takes about lockIdleTimeout + standbyRetry + takeoverGrace.
	lockIdleTimeout = 7 * time.Second
	// takeoverGrace is how long an instance that took the lock over from
	// another waits before it writes: should the server have ended the
	// other's session while that one still runs (pg_terminate_backend),
	// the other notices at its next check and stops.
	takeoverGrace = 2 * lockCheckInterval
)

// lockKeepalive makes the server notice a silent peer of the lock
// connection: no packet for 5 s, then 3 unanswered probes 1 s apart, so
// the lock of a lost machine is freed within 8 s; tcp_user_timeout bounds
// unacknowledged data the same way. client_connection_check_interval (PG
// 14+) also checks during queries. Settings unknown to an older server
// are skipped.
func lockKeepalive() []string {
	return []string{
		"SET tcp_keepalives_idle = 5",
		"SET tcp_keepalives_interval = 1",
		"SET tcp_keepalives_count = 3",
		"SET tcp_user_timeout = 8000",
		"SET client_connection_check_interval = 2000",
		// The state store writes through this connection: a commit must
		// be durable before it returns.
		"SET synchronous_commit = on",
	}
}

// lockIdleBounds end a lock session the server hears nothing on (PG 14+
// for idle_session_timeout): what frees the lock of a machine that is cut
// off, whatever its TCP peer (a proxy, a NAT) still acknowledges. Only
// connections that take the lock set them: a command reading the state
// may sit idle longer.
func lockIdleBounds() []string {
	ms := lockIdleTimeout.Milliseconds()
	return []string{
		fmt.Sprintf("SET idle_session_timeout = %d", ms),
		fmt.Sprintf("SET idle_in_transaction_session_timeout = %d", ms),
	}
}

// LockKey is the advisory lock key of a slot: the FNV-1a 64-bit hash of
// "replicator:" and the slot name, as PostgreSQL's signed bigint. pg_locks
// shows it as classid (the high 32 bits) and objid (the low 32 bits) with
// objsubid 1.
func LockKey(slot string) int64 {
	h := fnv.New64a()
	h.Write([]byte("replicator:" + slot))
	return int64(h.Sum64())
}

// InstanceID names this process as the lock connection's application_name,
// where 'status' and the standbys read it.
func InstanceID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	id := fmt.Sprintf("replicator/%s/%d", host, os.Getpid())
	// PostgreSQL keeps the first 63 bytes.
	if len(id) > 63 {
		id = id[:63]
	}
	return id
}

// connectLock opens a lock connection named instance; locking when it is
// to take the lock.
func connectLock(ctx context.Context, dsn, instance string, locking bool) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// The configuration checked the DSN; pgx's message may quote it.
		return nil, errors.New("source: the DSN cannot be parsed: check source.dsn")
	}
	cfg.RuntimeParams["application_name"] = instance
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("source: connect to %s:%d as %s: %w (check source.dsn and that PostgreSQL accepts connections from here)", cfg.Host, cfg.Port, cfg.User, err)
	}
	sets := lockKeepalive()
	if locking {
		sets = append(sets, lockIdleBounds()...)
	}
	for _, set := range sets {
		if _, err := conn.Exec(ctx, set); err != nil {
			if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "42704" {
				continue // unrecognized configuration parameter
			}
			conn.Close(context.Background())
			return nil, fmt.Errorf("source: %s: %w", set, err)
		}
	}
	return conn, nil
}

// LockHolder is the instance holding a slot's lock, as the server sees it.
type LockHolder struct {
	Instance string    `json:"instance"`
	PID      uint32    `json:"pid"`
	Client   string    `json:"client"`
	Since    time.Time `json:"since"`
}

func (h LockHolder) String() string {
	return fmt.Sprintf("%s (server process %d, from %s)", h.Instance, h.PID, h.Client)
}

// lockHolder finds who holds the lock; nil when nobody does.
func lockHolder(ctx context.Context, conn *pgx.Conn, key int64) (*LockHolder, error) {
	var h LockHolder
	err := conn.QueryRow(ctx, `
		SELECT a.application_name, a.pid, coalesce(host(a.client_addr), 'local socket'), a.backend_start
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.classid::int8 = $1 AND l.objid::int8 = $2`,
		int64(uint64(key)>>32), int64(uint64(key)&0xffffffff)).Scan(&h.Instance, &h.PID, &h.Client, &h.Since)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read who holds the lock: %w", err)
	}
	return &h, nil
}

// lease is the lock of the active instance: its connection, and the fence
// that ends when the lock is lost or the lease runs out (leaseTTL after
// the last answered query was sent). The fence does not end on a stop
// signal, so that in-flight writes may still drain then.
type lease struct {
	instance string
	logger   *slog.Logger
	fence    context.Context
	lose     context.CancelCauseFunc
	born     time.Time    // with its monotonic reading: leases measure intervals
	until    atomic.Int64 // the lease's end, as a time.Duration after born
	expire   *time.Timer  // ends the fence at the lease's end, cutting in-flight writes

	mu   sync.Mutex // one user of conn at a time
	conn *pgx.Conn
}

// newLease starts a lease on conn, whose query that took the lock was sent
// at asked.
func newLease(conn *pgx.Conn, instance string, logger *slog.Logger, asked time.Time) *lease {
	fence, lose := context.WithCancelCause(context.Background())
	l := &lease{instance: instance, logger: logger, fence: fence, lose: lose, conn: conn, born: asked}
	l.until.Store(int64(leaseTTL))
	l.expire = time.AfterFunc(leaseTTL, l.check)
	return l
}

// remaining is how long the lease lasts from now.
func (l *lease) remaining() time.Duration {
	return time.Duration(l.until.Load()) - time.Since(l.born)
}

// renew extends the lease to leaseTTL after sent, when a query sent then
// was answered.
func (l *lease) renew(sent time.Time) {
	until := int64(sent.Sub(l.born) + leaseTTL)
	for {
		cur := l.until.Load()
		if until <= cur || l.until.CompareAndSwap(cur, until) {
			return
		}
	}
}

// check ends the fence when the lease ran out, and otherwise looks again
// when it would.
func (l *lease) check() {
	if left := l.remaining(); left > 0 {
		l.expire.Reset(left)
		return
	}
	l.lose(fmt.Errorf("%w: no query on the lock connection was answered for %s; the server frees the lock of a silent instance after %s, so this one stops first", errLockLost, leaseTTL, lockIdleTimeout))
}

// lost is why the lock was lost; nil while it is held. The clock decides
// too, whether or not the timer has run yet: a write starts only within
// the lease.
func (l *lease) lost() error {
	if l.fence.Err() == nil && l.remaining() <= 0 {
		l.check()
	}
	if cause := context.Cause(l.fence); errors.Is(cause, errLockLost) {
		return cause
	}
	return nil
}

// use runs f on the lock connection (for the state store): a failure that
// closed the connection loses the lock, an answer renews the lease.
func (l *lease) use(ctx context.Context, f func(context.Context, *pgx.Conn) error) error {
	if err := l.lost(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// A use that takes longer than a check may leaves the server's
	// session, and so the lock, to end within lockIdleTimeout.
	ctx, cancel := context.WithTimeout(ctx, lockCheckTimeout)
	defer cancel()
	sent := time.Now()
	err := f(ctx, l.conn)
	if err == nil || errors.Is(err, pgx.ErrNoRows) {
		l.renew(sent)
	}
	if err != nil && l.conn.IsClosed() {
		l.lose(fmt.Errorf("%w: its connection failed: %v", errLockLost, err))
	}
	return err
}

// watch checks the lock connection until ctx ends or the lock is lost.
func (l *lease) watch(ctx context.Context) {
	t := time.NewTicker(lockCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.fence.Done():
			return
		case <-t.C:
		}
		err := l.use(context.Background(), func(ctx context.Context, c *pgx.Conn) error { return c.Ping(ctx) })
		if err != nil && ctx.Err() == nil {
			l.lose(fmt.Errorf("%w: the lock connection did not answer within %s: %v", errLockLost, lockCheckTimeout, err))
			return
		}
	}
}

// hold runs active while the lock holds: active's context ends when ctx
// does or the lock is lost. Then the lock is released.
func (l *lease) hold(ctx context.Context, active func(ctx context.Context, l *lease) error) error {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(l.fence, cancel)
	defer stop()
	wctx, endWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		l.watch(wctx)
	}()
	err := active(actx, l)
	endWatch()
	<-watched
	l.lose(context.Canceled)
	l.expire.Stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	if cerr := l.conn.Close(cctx); cerr != nil {
		l.logger.Debug("closing the lock connection", "error", cerr)
	}
	return err
}

// lead runs active whenever this instance holds the slot's lock, and waits
// as a standby otherwise, until ctx ends or active fails for a reason other
// than a lost lock.
func lead(ctx context.Context, cfg *config.Config, deps Deps, instance string, active func(ctx context.Context, l *lease) error) error {
	s := &standby{cfg: cfg, logger: deps.Logger, mon: deps.Monitor, instance: instance, key: LockKey(cfg.Source.Slot)}
	for {
		l, err := s.acquire(ctx)
		if err != nil {
			return err
		}
		err = l.hold(ctx, active)
		if ctx.Err() != nil {
			return err
		}
		cause := l.lost()
		if cause == nil {
			return err
		}
		deps.Logger.Warn("stopped writing: this instance is no longer the active one; waiting as a standby", "reason", cause.Error(), "stopped_with", fmt.Sprint(err))
		deps.Monitor.Error("", cause)
	}
}

// standby waits for the lock.
type standby struct {
	cfg      *config.Config
	logger   *slog.Logger
	mon      *monitor.Monitor
	instance string
	key      int64
}

// acquire returns once this instance holds the lock.
func (s *standby) acquire(ctx context.Context) (*lease, error) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	var seen *LockHolder
	failures := 0
	for {
		if conn == nil {
			c, err := connectLock(ctx, s.cfg.Source.DSN, s.instance, true)
			if err != nil {
				if ctx.Err() != nil || !transientSource(err) {
					return nil, explainFatal(err)
				}
				failures++
				s.mon.Reconnecting(failures, err)
				wait := backoff.Delay(time.Second, 30*time.Second, failures)
				s.logger.Warn("cannot reach PostgreSQL to take the lock; reconnecting", "error", err, "attempt", failures, "wait", wait)
				if err := backoff.Sleep(ctx, wait); err != nil {
					return nil, err
				}
				continue
			}
			conn, failures = c, 0
		}
		var got bool
		var holder *LockHolder
		asked := time.Now()
		err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", s.key).Scan(&got)
		if err == nil && !got {
			holder, err = lockHolder(ctx, conn, s.key)
		}
		if err != nil {
			conn.Close(context.Background())
			conn = nil
			if ctx.Err() != nil || !transientSource(err) {
				return nil, fmt.Errorf("take the lock of slot %s: %w", s.cfg.Source.Slot, err)
			}
			continue
		}
		if got {
			l := newLease(conn, s.instance, s.logger, asked)
			conn = nil
			if seen != nil {
				s.logger.Info("took the lock over; waiting for the previous instance to have stopped", "from", seen.Instance, "grace", takeoverGrace)
				if err := backoff.Sleep(ctx, takeoverGrace); err != nil {
					l.hold(ctx, func(context.Context, *lease) error { return nil })
					return nil, err
				}
			}
			s.logger.Info("this instance is the active one", "instance", s.instance, "slot", s.cfg.Source.Slot)
			s.mon.Phase("starting")
			return l, nil
		}
		if holder != nil && (seen == nil || seen.Instance != holder.Instance || seen.PID != holder.PID) {
			s.logger.Info("standby: waiting for the lock held by another instance; it takes over when that one stops", "holder", holder.String(), "slot", s.cfg.Source.Slot)
			seen = holder
		}
		if holder != nil {
			s.mon.Standby("waiting for the lock held by " + holder.String())
		} else {
			s.mon.Standby("waiting for the lock")
		}
		if err := backoff.Sleep(ctx, standbyRetry); err != nil {
			return nil, err
		}
	}
}
