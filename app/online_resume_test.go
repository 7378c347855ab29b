package app_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/state"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// chunkLog records the online resync chunks a daemon read (the
// AfterResyncRead hook), and what its monitor showed at the first one.
type chunkLog struct {
	mu        sync.Mutex
	seqs      []int
	firstRows int64
	firstSeen int
}

func (l *chunkLog) hook(mon *monitor.Monitor, source string, then func(chunk int)) func(string, int) {
	return func(s string, chunk int) {
		if s != source {
			return
		}
		l.mu.Lock()
		if len(l.seqs) == 0 {
			st := tableStatus(mon, source)
			l.firstRows, l.firstSeen = st.SnapshotRows, st.ResyncChunk
		}
		l.seqs = append(l.seqs, chunk)
		l.mu.Unlock()
		if then != nil {
			then(chunk)
		}
	}
}

func (l *chunkLog) read() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.seqs...)
}

// rowsWritten sums the rows of the target's accepted writes to table.
// resyncToChunk starts a daemon that logs the chunks it reads into log,
// asks it to resync table, and returns once the resync read chunk at.
// then runs at every chunk read, before that return.
func resyncToChunk(t *testing.T, e *env, cfg *config.Config, mon *monitor.Monitor, log *chunkLog, source, table string, at int, then func(chunk int)) *running {
	t.Helper()
	reached := make(chan struct{})
	var once sync.Once
	daemon := startResyncHooked(t, e, cfg, mon, log.hook(mon, source, func(chunk int) {
		if then != nil {
			then(chunk)
		}
		if chunk == at {
			once.Do(func() { close(reached) })
		}
	}))
	_, err := app.Resync(context.Background(), cfg, false, []string{table})
	require.NoError(t, err)
	select {
	case <-reached:
	case <-time.After(5 * time.Minute):
		t.Fatal("the resync never read its chunk ", at)
	}
	return daemon
}

func rowsWritten(reqs []feishufake.Request, table string) int {
	n := 0
	for _, r := range reqs {
		if r.Method == http.MethodPost && r.Table == table && r.Status == http.StatusOK && r.Code == 0 {
			n += r.Rows
		}
	}
	return n
}

// savedProgress reads the stopped daemon's saved progress of source.
func savedProgress(t *testing.T, cfg *config.Config, source string) state.TableProgress {
	t.Helper()
	store, err := state.Open(cfg.State.Dir)
	require.NoError(t, err)
	return store.Table(source)
}

// waitResynced waits until the monitor shows source's online resync done.
func waitResynced(t *testing.T, mon *monitor.Monitor, source string) {
	t.Helper()
	testkit.Eventually(t, 5*time.Minute, "the resync", func() bool {
		st := tableStatus(mon, source)
		return st.SnapshotDone && !st.Resyncing
	})
}

// A daemon stopped while resyncing a table online goes on after the last
// chunk the stream acknowledged when it starts again: it reads fewer chunks
// than the table holds and the target receives fewer rows, the status
// counts the rows copied before the stop, and the mirror is exact, with
// rows changed inside the windows of both runs and, while the daemon was
// stopped, on both sides of the saved key.
func TestOnlineResyncResumesAfterRestart(t *testing.T) {
	const rows, chunkRows, stopAt = 3000, 100, 8
	e, fake, targets := newOnlineEnv(t, rows)
	cfg := e.configWithTargets(targets, bigMapping+otherMapping)
	cfg.Pipeline.SnapshotChunkRows = chunkRows
	hookConn := mustConnect(t, e.dsn)
	inWindow := func(chunk int) {
		if _, err := hookConn.Exec(context.Background(), `UPDATE big SET v = 'in window', n = n + 1000 WHERE id = $1`, (chunk-1)*chunkRows+50); err != nil {
			t.Errorf("change a row in the window: %v", err)
		}
	}

	mon := monitor.New(prometheus.NewRegistry())
	first := &chunkLog{}
	daemon := resyncToChunk(t, e, cfg, mon, first, "public.big", "big", stopAt, inWindow)
	require.NoError(t, daemon.stop())
	saved := savedProgress(t, cfg, "public.big")
	require.True(t, saved.Online && !saved.Done, "the stop left the resync unfinished: %+v", saved)
	require.GreaterOrEqual(t, saved.Chunks, stopAt-1, "every chunk before the one read last was acknowledged")
	require.Equal(t, state.TableProgress{Online: true, LastKey: []string{fmt.Sprint(saved.Chunks * chunkRows)}, KeyColumns: []string{"id"},
		Rows: int64(saved.Chunks * chunkRows), Chunks: saved.Chunks}, saved)

	report, err := app.Status(context.Background(), cfg)
	require.NoError(t, err)
	var shown []string
	for _, tbl := range report.Tables {
		if tbl.Source == "public.big" {
			shown = append(shown, tbl.Resync)
		}
	}
	require.Equal(t, []string{fmt.Sprintf("online resync unfinished: %d rows copied in %d chunks; the next start goes on after them", saved.Rows, saved.Chunks)}, shown,
		"replicator status shows what the stopped daemon copied")

	key := saved.Chunks * chunkRows
	e.exec(`UPDATE big SET v = 'while stopped', n = n + 1 WHERE id IN (1, $1::int, $1::int + 1, $1::int + 150, 2999)`, key)
	e.exec(`DELETE FROM big WHERE id IN (2, $1::int - 1, $1::int + 2, $1::int + 151)`, key)
	e.exec(`INSERT INTO big VALUES ($1 + 1, 'while stopped', 0)`, rows)

	mon = monitor.New(prometheus.NewRegistry())
	second := &chunkLog{}
	before := len(fake.Requests())
	daemon = startResyncHooked(t, e, cfg, mon, second.hook(mon, "public.big", inWindow))
	waitResynced(t, mon, "public.big")
	seqs := second.read()
	require.NotEmpty(t, seqs)
	written := rowsWritten(fake.Requests()[before:], "big")
	t.Logf("first run: %d chunks read, %d acknowledged (%d rows, up to key %v); second run: %d chunks read, %d rows of big written (%d rows in the table)",
		len(first.read()), saved.Chunks, saved.Rows, saved.LastKey, len(seqs), written, rows)
	require.Equal(t, saved.Chunks+1, seqs[0], "the second run reads on after the last acknowledged chunk")
	// 2999-key rows after the key (two deleted, one added): the last chunk
	// is short.
	require.Equal(t, rows/chunkRows-saved.Chunks, len(seqs), "the second run reads the chunks after the saved key")
	require.Less(t, written, rows, "the second run writes fewer rows than the table holds")
	require.Equal(t, saved.Rows, second.firstRows, "the status counts the rows copied before the restart")
	require.Equal(t, saved.Chunks, second.firstSeen, "the status counts the chunks acknowledged before the restart")

	converged(t, e, mon, fake, map[string][]string{"big": {"big", "v", "n"}})
	st := tableStatus(mon, "public.big")
	require.Equal(t, int64(rows-2+1), st.SnapshotRows, "the rows copied by both runs, each once: up to the key, then after it")
	require.Equal(t, state.TableProgress{Done: true, Rows: st.SnapshotRows}, savedProgressOf(t, daemon, cfg, "public.big"))
}

// savedProgressOf stops the daemon and reads its saved progress of source.
func savedProgressOf(t *testing.T, daemon *running, cfg *config.Config, source string) state.TableProgress {
	t.Helper()
	require.NoError(t, daemon.stop())
	return savedProgress(t, cfg, source)
}

const compositeSchema = `CREATE TABLE ck (region text, seq bigint, v text NOT NULL, PRIMARY KEY (region, seq));`

var compositeCols = []feishufake.Column{
	{Name: "region", DataType: "text", IsPrimaryKey: true},
	{Name: "seq", DataType: "bigint", IsPrimaryKey: true},
	{Name: "v", DataType: "text"},
}

// compositeDiff compares the fake's table ck with the source's.
func compositeDiff(t *testing.T, e *env, fake *feishufake.Server) string {
	want := map[string]string{}
	for _, row := range e.sourceRows("ck", "region", "seq") {
		want[fmt.Sprintf("%v|%v", row["region"], row["seq"])] = fmt.Sprint(row["v"])
	}
	got := map[string]string{}
	for _, row := range fake.Rows("ck") {
		got[fmt.Sprintf("%v|%v", row["region"], row["seq"])] = fmt.Sprint(row["v"])
	}
	var diffs []string
	for k, v := range want {
		if got[k] != v {
			diffs = append(diffs, fmt.Sprintf("%s: want %q got %q", k, v, got[k]))
		}
	}
	return diffSummary(diffs, got, want)
}

// A table keyed by text and a number resumes after the key it saved, in
// the order the chunks are read (text by the column's collation, numbers
// as numbers: seq 10 after 9): the second run writes exactly the rows after
// that key, once each.
func TestOnlineResyncResumesCompositeKey(t *testing.T) {
	const perRegion, chunkRows, stopAt = 120, 50, 4
	regions := []string{"a", "B", "b", "z z", "é"}
	total := perRegion * len(regions)
	e := newEnv(t, compositeSchema)
	e.exec(`INSERT INTO ck SELECT r, g, r || '-' || g FROM unnest($1::text[]) r, generate_series(1, $2::int) g`, regions, perRegion)
	fake, targets := larkFakeWith(t, feishufake.Options{}, "ck", compositeCols)
	cfg := e.configWithTargets(targets, `
  - source: ck
    target: lark
    table: ck
    snapshot: false
`)
	cfg.Pipeline.SnapshotChunkRows = chunkRows

	mon := monitor.New(prometheus.NewRegistry())
	daemon := resyncToChunk(t, e, cfg, mon, &chunkLog{}, "public.ck", "ck", stopAt, nil)
	require.NoError(t, daemon.stop())
	saved := savedProgress(t, cfg, "public.ck")
	require.GreaterOrEqual(t, saved.Chunks, stopAt-1)
	require.Equal(t, int64(saved.Chunks*chunkRows), saved.Rows)
	require.Equal(t, []string{"region", "seq"}, saved.KeyColumns)
	var region, seq string
	// ck.seq: a bare seq would sort by the text column of the select list.
	require.NoError(t, e.db.QueryRow(context.Background(), `SELECT region, seq::text FROM ck ORDER BY ck.region, ck.seq OFFSET $1 LIMIT 1`, saved.Rows-1).Scan(&region, &seq))
	require.Equal(t, []string{region, seq}, saved.LastKey, "the saved key is the last key of the last acknowledged chunk, in read order")

	mon = monitor.New(prometheus.NewRegistry())
	second := &chunkLog{}
	before := len(fake.Requests())
	daemon = startResyncHooked(t, e, cfg, mon, second.hook(mon, "public.ck", nil))
	waitResynced(t, mon, "public.ck")
	resent := rowsWritten(fake.Requests()[before:], "ck")
	t.Logf("%d rows; stopped after %d acknowledged chunks (key %v); the second run wrote %d rows in %d chunks", total, saved.Chunks, saved.LastKey, resent, len(second.read()))
	require.Equal(t, total-int(saved.Rows), resent, "the second run writes the rows after the saved key, once each")
	require.Equal(t, saved.Chunks+1, second.read()[0])
	require.Empty(t, compositeDiff(t, e, fake))
	require.Equal(t, int64(total), tableStatus(mon, "public.ck").SnapshotRows)
	require.NoError(t, daemon.stop())
}

// A daemon stopped after a chunk was read and handed to the stream, but
// before the target confirmed it, resumes at the chunk before: the key of
// an unconfirmed chunk is never saved, and its rows are written after the
// restart, into both mappings of the fanned-out table.
func TestOnlineResyncStopBeforeAckResumesAtPreviousKey(t *testing.T) {
	const rows, chunkRows, failAt = 1000, 100, 4
	e, fake, targets := newOnlineEnv(t, rows)
	require.NoError(t, fake.AddTable("big2", onlineCols))
	cfg := e.configWithTargets(targets, bigMapping+big2Mapping)
	cfg.Pipeline.SnapshotChunkRows = chunkRows
	cfg.Pipeline.ShutdownTimeout = 2 * time.Second

	mon := monitor.New(prometheus.NewRegistry())
	daemon := resyncToChunk(t, e, cfg, mon, &chunkLog{}, "public.big", "big", failAt, func(chunk int) {
		if chunk == failAt {
			// From this chunk on the target confirms nothing.
			fake.SetFaultRate(1, feishufake.FaultServerError)
		}
	})
	testkit.Eventually(t, 60*time.Second, "the unconfirmed chunk's writes to reach the target", func() bool {
		for _, r := range fake.Requests() {
			if r.Table == "big" && r.Status == http.StatusInternalServerError {
				return true
			}
		}
		return false
	})
	require.NoError(t, daemon.stop())
	saved := savedProgress(t, cfg, "public.big")
	require.Equal(t, state.TableProgress{Online: true, LastKey: []string{fmt.Sprint((failAt - 1) * chunkRows)}, KeyColumns: []string{"id"},
		Rows: (failAt - 1) * chunkRows, Chunks: failAt - 1}, saved, "the progress ends at the last confirmed chunk")

	fake.SetFaultRate(0)
	mon = monitor.New(prometheus.NewRegistry())
	second := &chunkLog{}
	before := len(fake.Requests())
	daemon = startResyncHooked(t, e, cfg, mon, second.hook(mon, "public.big", nil))
	waitResynced(t, mon, "public.big")
	require.Equal(t, failAt, second.read()[0], "the unconfirmed chunk is read again")
	for _, table := range []string{"big", "big2"} {
		require.Equal(t, rows-(failAt-1)*chunkRows, rowsWritten(fake.Requests()[before:], table), "rows written into %s after the restart", table)
	}
	converged(t, e, mon, fake, map[string][]string{"big": {"big", "v", "n"}, "big2": {"big", "v", "n"}})
	require.NoError(t, daemon.stop())
}
