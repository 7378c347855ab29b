package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/httpapi"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

const onlineSchema = `CREATE TABLE big (id bigint PRIMARY KEY, v text NOT NULL, n integer NOT NULL);
CREATE TABLE other (id bigint PRIMARY KEY, v text NOT NULL);`

var onlineCols = []feishufake.Column{
	{Name: "id", DataType: "bigint", IsPrimaryKey: true},
	{Name: "v", DataType: "text"},
	{Name: "n", DataType: "integer", AllowNull: true},
}

// onlineFake is a Feishu fake holding tables big and other, enforcing the
// real API's 10 requests a second per app (the daemon's default rate). The
// load below changes both tables all the time; the resync takes what the
// stream leaves of the quota.
func onlineFake(t *testing.T) (*feishufake.Server, string) {
	fake, targets := larkFakeWith(t, feishufake.Options{}, "big", onlineCols)
	require.NoError(t, fake.AddTable("other", onlineCols[:2]))
	return fake, targets
}

// onlineFlush is the flush interval of the tests that run the load. The
// 50 ms of the other tests would ask the real 10 requests a second for some
// 60 (a batch of each table, and big's deletes, each flush): the stream
// then lags the load by seconds before any resync begins (5.6 s measured,
// 0.5 s at the 60 a second these tests once allowed), and the two tests
// took 100 s longer. At 500 ms the stream asks some 6 a second, the resync
// has the rest, and they take some 20 s longer than at 60 a second.
const onlineFlush = 500 * time.Millisecond

// newOnlineEnv is a database whose table big holds rows rows, with the
// Feishu fake of onlineFake.
func newOnlineEnv(t *testing.T, rows int) (*env, *feishufake.Server, string) {
	e := newEnv(t, onlineSchema)
	e.exec(`INSERT INTO big SELECT g, 'v' || g, 0 FROM generate_series(1, $1::int) g`, rows)
	fake, targets := onlineFake(t)
	return e, fake, targets
}

const bigMapping = `
  - source: big
    target: lark
    table: big
    snapshot: false
`

// big2Mapping fans big out to a second table of the target.
const big2Mapping = `
  - source: big
    target: lark
    table: big2
    snapshot: false
`

const otherMapping = `
  - source: other
    target: lark
    table: other
`

// onlineRows is how many rows the resynced table holds:
// REPLICATOR_RESYNC_ROWS overrides it (the issue asks for 200k; the shared
// test machine runs 20k by default).
func onlineRows(t *testing.T) int {
	if s := os.Getenv("REPLICATOR_RESYNC_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err)
		return n
	}
	return 20000
}

// fakeMatches compares a fake's table with the source table of the same
// name, every row and column.
func fakeMatches(t *testing.T, e *env, fake *feishufake.Server, table string, cols ...string) string {
	return fakeMatchesFrom(t, e, fake, table, table, cols...)
}

func fakeMatchesFrom(t *testing.T, e *env, fake *feishufake.Server, source, table string, cols ...string) string {
	want := map[string]map[string]string{}
	for _, row := range e.sourceRows(source, "id") {
		m := map[string]string{}
		for _, c := range cols {
			m[c] = fmt.Sprint(row[c])
		}
		want[fmt.Sprint(row["id"])] = m
	}
	got := fakeRowsByID(t, fake, table)
	var diffs []string
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			diffs = append(diffs, "missing "+id)
			continue
		}
		for _, c := range cols {
			gv := g[c]
			if s, err := strconv.Unquote(gv); err == nil {
				gv = s
			}
			if gv != w[c] {
				diffs = append(diffs, fmt.Sprintf("%s.%s: want %s got %s", id, c, w[c], g[c]))
			}
		}
	}
	return diffSummary(diffs, got, want)
}

// diffSummary adds the keys got has and want lacks to diffs and sums them
// up; "" when there are none.
func diffSummary[G, W any](diffs []string, got map[string]G, want map[string]W) string {
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "extra "+k)
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	return fmt.Sprintf("%d differences, e.g. %v", len(diffs), diffs[:min(3, len(diffs))])
}

// converged checks that the target tables equal their source tables (by
// target table: the source, then the columns compared) once the daemon has
// written everything: it waits until the daemon acknowledged a mark emitted
// after the changes stopped, so that a difference is a stale row, never
// one still on its way.
func converged(t *testing.T, e *env, mon *monitor.Monitor, fake *feishufake.Server, tables map[string][]string) {
	t.Helper()
	var text string
	require.NoError(t, e.db.QueryRow(context.Background(), "SELECT pg_logical_emit_message(false, 'test-fence', '')::text").Scan(&text))
	fence, err := replicator.ParseLSN(text)
	require.NoError(t, err)
	testkit.Eventually(t, 5*time.Minute, "the daemon to acknowledge everything written", func() bool {
		acked, err := replicator.ParseLSN(mon.Snapshot().Acknowledged)
		return err == nil && acked >= fence
	})
	for table, cols := range tables {
		require.Empty(t, fakeMatchesFrom(t, e, fake, cols[0], table, cols[1:]...), "target table %s once everything is acknowledged", table)
	}
}

func waitFake(t *testing.T, e *env, fake *feishufake.Server, table string, timeout time.Duration, cols ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	diff := ""
	for time.Now().Before(deadline) {
		if diff = fakeMatches(t, e, fake, table, cols...); diff == "" {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("target table %s never matched the source: %s", table, diff)
}

// load changes both tables until stopped: inserts, updates and deletes in
// big, inserts and updates in other.
type load struct {
	stop    chan struct{}
	halt    sync.Once
	done    sync.WaitGroup
	changes atomic.Int64
}

func startLoad(t *testing.T, e *env, rows int, otherFrom int64) *load {
	l := &load{stop: make(chan struct{})}
	conn := mustConnect(t, e.dsn)
	// Registered after the connection's cleanup, so it runs first: a test
	// that fails midway stops the load before its connection closes.
	t.Cleanup(func() { l.finish() })
	l.done.Add(1)
	go func() {
		defer l.done.Done()
		defer conn.Close(context.Background())
		ctx := context.Background()
		next := otherFrom
		for i := 0; i < 200000; i++ {
			select {
			case <-l.stop:
				return
			default:
			}
			id := rand.IntN(rows) + 1
			var err error
			switch i % 4 {
			case 0:
				_, err = conn.Exec(ctx, `UPDATE big SET v = 'u' || $2::text, n = n + 1 WHERE id = $1`, id, strconv.Itoa(i))
			case 1:
				_, err = conn.Exec(ctx, `INSERT INTO big VALUES ($1, 'ins', 0) ON CONFLICT (id) DO UPDATE SET v = 'reins', n = big.n + 1`, id)
			case 2:
				_, err = conn.Exec(ctx, `DELETE FROM big WHERE id = $1`, id)
			case 3:
				next++
				if _, err = conn.Exec(ctx, `INSERT INTO other VALUES ($1, 'load')`, next); err == nil {
					_, err = conn.Exec(ctx, `UPDATE other SET v = 'upd' || $2::text WHERE id = $1 - 1`, next, strconv.Itoa(i))
				}
			}
			if err != nil {
				t.Errorf("load: %v", err)
				return
			}
			l.changes.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return l
}

func (l *load) finish() int64 {
	l.halt.Do(func() { close(l.stop) })
	l.done.Wait()
	return l.changes.Load()
}

func tableStatus(mon *monitor.Monitor, source string) monitor.Table {
	for _, t := range mon.Snapshot().Tables {
		if t.Source == source {
			return t
		}
	}
	return monitor.Table{}
}

// probe inserts row id into other and measures how long it takes to reach
// the target.
func probe(t *testing.T, e *env, fake *feishufake.Server, id int64) time.Duration {
	t.Helper()
	at := time.Now()
	e.exec(`INSERT INTO other VALUES ($1, 'probe')`, id)
	key := strconv.FormatInt(id, 10)
	for time.Since(at) < 60*time.Second {
		if fakeRowsByID(t, fake, "other")[key] != nil {
			return time.Since(at)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("a row of the other table waited over 60 s")
	return 0
}

// baselineLag is the other table's longest wait over a few probes, with
// the load on and no resync: what the resync's figure compares with.
func baselineLag(t *testing.T, e *env, fake *feishufake.Server) time.Duration {
	var worst time.Duration
	for id := int64(900_000); id < 900_020; id++ {
		worst = max(worst, probe(t, e, fake, id))
		time.Sleep(100 * time.Millisecond)
	}
	return worst
}

// probeWhileResyncing inserts a row into other, one after the other, while
// big is being resynced, and measures how long each takes to reach the
// target: the stream must keep flowing for the other tables. It returns the
// rows that arrived while the resync ran and the longest wait.
func probeWhileResyncing(t *testing.T, e *env, fake *feishufake.Server, mon *monitor.Monitor) (arrived int, worst time.Duration, maxChunk int) {
	t.Helper()
	sawResync := false
	deadline := time.Now().Add(10 * time.Minute)
	for id := int64(1_000_000); time.Now().Before(deadline); id++ {
		st := tableStatus(mon, "public.big")
		maxChunk = max(maxChunk, st.ResyncChunk)
		if st.Resyncing {
			sawResync = true
		} else if sawResync || st.SnapshotDone && st.SnapshotRows > 0 {
			return arrived, worst, maxChunk
		}
		worst = max(worst, probe(t, e, fake, id))
		if tableStatus(mon, "public.big").Resyncing {
			arrived++
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the resync did not finish within 10 minutes")
	return
}

// startResyncHooked starts the daemon with a hook between each online
// resync chunk's read and its high watermark.
func startResyncHooked(t *testing.T, e *env, cfg *config.Config, mon *monitor.Monitor, hook func(string, int)) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	go func() {
		r.done <- app.Run(ctx, cfg, app.Deps{Logger: logger, Monitor: mon, AfterResyncRead: hook})
	}()
	t.Cleanup(func() { r.stop() })
	testkit.Eventually(t, 60*time.Second, "streaming", func() bool { return mon.Snapshot().Phase == "streaming" })
	return r
}

func startWithMonitor(t *testing.T, e *env, cfg *config.Config, mon *monitor.Monitor) *running {
	return e.startStreamingWith(cfg, mon, io.Discard)
}

// `replicator resync --table` on a running daemon copies the table again
// beside the stream: both tables converge to the source exactly, changes
// of the other table keep arriving during the copy, and the progress shows
// on the status.
func TestOnlineResyncUnderLoad(t *testing.T) {
	rows := onlineRows(t)
	e, fake, targets := newOnlineEnv(t, rows)
	e.exec(`INSERT INTO other SELECT g, 'o' || g FROM generate_series(1, 100) g`)
	cfg := e.configWithTargets(targets, bigMapping+otherMapping)
	cfg.Pipeline.SnapshotChunkRows = 5000
	cfg.Pipeline.FlushInterval = onlineFlush
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.HTTP.Listen = ln.Addr().String()
	reg := prometheus.NewRegistry()
	mon := monitor.New(reg)
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	defer stopHTTP()
	go func() {
		_ = httpapi.New(httpapi.Options{Monitor: mon, Gatherer: reg, Logger: quietLogger()}).Serve(httpCtx, ln)
	}()
	daemon := startWithMonitor(t, e, cfg, mon)
	waitFake(t, e, fake, "other", 60*time.Second, "v")
	require.Empty(t, fake.Rows("big"), "snapshot: false copies nothing at start")

	l := startLoad(t, e, rows, 100)
	base := baselineLag(t, e, fake)
	done, err := app.Resync(context.Background(), cfg, false, []string{"big"})
	require.NoError(t, err)
	require.Len(t, done, 1)
	require.Contains(t, done[0], "running daemon")
	started := time.Now()
	var shown string
	testkit.Eventually(t, 30*time.Second, "replicator status to show the resync", func() bool {
		r, err := app.Status(context.Background(), cfg)
		require.NoError(t, err)
		for _, tbl := range r.Tables {
			shown = max(shown, tbl.Resync)
		}
		return shown != ""
	})
	t.Logf("status: %s", shown)
	arrived, worst, chunks := probeWhileResyncing(t, e, fake, mon)
	changes := l.finish()
	t.Logf("resync of %d rows took %s with %d concurrent changes; %d rows of the other table arrived during it, the slowest after %s (%s before the resync); %d chunks",
		rows, time.Since(started).Round(time.Millisecond), changes, arrived, worst.Round(time.Millisecond), base.Round(time.Millisecond), chunks)
	require.Positive(t, arrived, "the other table's changes kept arriving during the resync")
	require.Positive(t, chunks, "the status showed the resync's chunks")

	converged(t, e, mon, fake, map[string][]string{"big": {"big", "v", "n"}, "other": {"other", "v"}})
	st := tableStatus(mon, "public.big")
	require.True(t, st.SnapshotDone)
	require.False(t, st.Resyncing)
	require.NoError(t, daemon.stop())
}

// Rows updated while their chunk is read never end stale: the stream's
// change inside the watermark window wins over the chunk's older copy.
func TestOnlineResyncUpdatesInWindowWin(t *testing.T) {
	const rows = 3000
	e, fake, targets := newOnlineEnv(t, rows)
	cfg := e.configWithTargets(targets, bigMapping+otherMapping)
	cfg.Pipeline.SnapshotChunkRows = 100
	mon := monitor.New(prometheus.NewRegistry())
	// Between each chunk's read and its high watermark, one row of the
	// chunk changes: the chunk holds its old value, which must not win.
	hookConn := mustConnect(t, e.dsn)
	var hooked []int
	daemon := startResyncHooked(t, e, cfg, mon, func(source string, chunk int) {
		id := (chunk-1)*100 + 50
		if id > rows {
			return
		}
		_, err := hookConn.Exec(context.Background(), `UPDATE big SET v = 'in window', n = n + 1000 WHERE id = $1`, id)
		if err == nil {
			hooked = append(hooked, id)
		}
	})

	_, err := app.Resync(context.Background(), cfg, false, []string{"public.big"})
	require.NoError(t, err)
	testkit.Eventually(t, 5*time.Minute, "the resync", func() bool {
		st := tableStatus(mon, "public.big")
		return st.SnapshotDone && !st.Resyncing
	})
	t.Logf("rows changed inside a window: %v", hooked)
	require.Len(t, hooked, rows/100)
	converged(t, e, mon, fake, map[string][]string{"big": {"big", "v", "n"}})
	require.NoError(t, daemon.stop())
}

// A mapping added to the configuration is copied online at the next start:
// the other table streams while it is copied.
func TestOnlineResyncOfAddedMapping(t *testing.T) {
	rows := onlineRows(t)
	e, fake, targets := newOnlineEnv(t, rows)
	cfg := e.configWithTargets(targets, otherMapping)
	daemon := e.startStreaming(cfg)
	e.exec(`INSERT INTO other VALUES (1, 'first')`)
	waitFake(t, e, fake, "other", 60*time.Second, "v")
	require.NoError(t, daemon.stop())

	cfg = e.configWithTargets(targets, otherMapping+`
  - source: big
    target: lark
    table: big
`)
	cfg.Pipeline.SnapshotChunkRows = 1000
	cfg.Pipeline.FlushInterval = onlineFlush
	l := startLoad(t, e, rows, 1)
	mon := monitor.New(prometheus.NewRegistry())
	daemon = startWithMonitor(t, e, cfg, mon)
	arrived, worst, chunks := probeWhileResyncing(t, e, fake, mon)
	changes := l.finish()
	t.Logf("the added table (%d rows) was copied with %d concurrent changes; %d rows of the other table arrived during it, the slowest after %s; %d chunks",
		rows, changes, arrived, worst.Round(time.Millisecond), chunks)
	require.Positive(t, arrived, "the other table streamed while the added one was copied")
	converged(t, e, mon, fake, map[string][]string{"big": {"big", "v", "n"}, "other": {"other", "v"}})
	require.NoError(t, daemon.stop())
}

// A table fanned out to two target tables is read once and resynced into
// both: a row changed inside each window wins in both, and the progress
// shows on each mapping's row of 'replicator status'.
func TestOnlineResyncFanOut(t *testing.T) {
	const rows = 2000
	e, fake, targets := newOnlineEnv(t, rows)
	require.NoError(t, fake.AddTable("big2", onlineCols))
	cfg := e.configWithTargets(targets, bigMapping+big2Mapping+otherMapping)
	cfg.Pipeline.SnapshotChunkRows = 500
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.HTTP.Listen = ln.Addr().String()
	reg := prometheus.NewRegistry()
	mon := monitor.New(reg)
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	defer stopHTTP()
	go func() {
		_ = httpapi.New(httpapi.Options{Monitor: mon, Gatherer: reg, Logger: quietLogger()}).Serve(httpCtx, ln)
	}()
	hookConn := mustConnect(t, e.dsn)
	var shown []string
	daemon := startResyncHooked(t, e, cfg, mon, func(source string, chunk int) {
		if _, err := hookConn.Exec(context.Background(), `UPDATE big SET v = 'in window', n = n + 1000 WHERE id = $1`, (chunk-1)*500+7); err != nil {
			t.Errorf("change a row in the window: %v", err)
		}
		if chunk != 2 {
			return
		}
		r, err := app.Status(context.Background(), cfg)
		if err != nil {
			t.Errorf("status: %v", err)
			return
		}
		for _, tbl := range r.Tables {
			if tbl.Source == "public.big" {
				shown = append(shown, tbl.Table+": "+tbl.Resync)
			}
		}
	})

	_, err = app.Resync(context.Background(), cfg, false, []string{"big"})
	require.NoError(t, err)
	testkit.Eventually(t, 5*time.Minute, "the resync", func() bool {
		st := tableStatus(mon, "public.big")
		return st.SnapshotDone && !st.Resyncing
	})
	require.Equal(t, []string{
		"big: online resync: 500 of ~500 rows copied, chunk 1",
		"big2: online resync: 500 of ~500 rows copied, chunk 1",
	}, shown)
	var resynced []string
	for _, st := range mon.Snapshot().Tables {
		if st.Source == "public.big" && st.SnapshotDone && st.SnapshotRows == rows {
			resynced = append(resynced, st.Table)
		}
	}
	require.Equal(t, []string{"big", "big2"}, resynced, "each mapping's row shows the finished copy")
	converged(t, e, mon, fake, map[string][]string{"big": {"big", "v", "n"}, "big2": {"big", "v", "n"}})
	require.NoError(t, daemon.stop())
}

// A transaction that was writing when the resync began ends before the
// first chunk is read: the stream follows the table only from the
// resync's start, so a commit streamed just before it must be visible to
// every chunk's read (see awaitOlderWriters).
func TestOnlineResyncWaitsForOlderWriters(t *testing.T) {
	const rows = 1000
	e, fake, targets := newOnlineEnv(t, rows)
	cfg := e.configWithTargets(targets, bigMapping+otherMapping)
	mon := monitor.New(prometheus.NewRegistry())
	var ended atomic.Bool
	var readEarly atomic.Bool
	daemon := startResyncHooked(t, e, cfg, mon, func(string, int) {
		if !ended.Load() {
			readEarly.Store(true)
		}
	})

	writer := mustConnect(t, e.dsn)
	tx, err := writer.Begin(context.Background())
	require.NoError(t, err)
	_, err = tx.Exec(context.Background(), `UPDATE big SET v = 'held', n = 7 WHERE id = 1`)
	require.NoError(t, err)
	_, err = app.Resync(context.Background(), cfg, false, []string{"big"})
	require.NoError(t, err)
	// Room for a resync that does not wait to read a chunk meanwhile.
	time.Sleep(2 * time.Second)
	ended.Store(true)
	require.NoError(t, tx.Commit(context.Background()))

	testkit.Eventually(t, 5*time.Minute, "the resync", func() bool {
		st := tableStatus(mon, "public.big")
		return st.SnapshotDone && !st.Resyncing
	})
	require.False(t, readEarly.Load(), "a chunk was read while a transaction older than the resync was still writing")
	converged(t, e, mon, fake, map[string][]string{"big": {"big", "v", "n"}})
	require.NoError(t, daemon.stop())
}
