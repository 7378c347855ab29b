package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/state"
	"github.com/replicator-cdc/replicator/targets/gptbots"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

// unix_ms has no value for ±infinity: today's encoder returns an error for
// it, which makes it a poison value that arrives through the real path.
const poisonSchema = `
CREATE TABLE events (id int PRIMARY KEY, name text, at timestamptz);
CREATE TABLE stamps (at timestamptz PRIMARY KEY, v text);
`

const eventsMapping = `
  - source: events
    target: mem
    table: events
    columns:
      id: id
      name: name
      at: {name: at, format: unix_ms}
`

const poisonMapping = eventsMapping + `  - source: stamps
    target: mem
    table: stamps
    columns:
      at: {name: at, format: unix_ms}
      v: v
`

func readDeadLetters(t testing.TB, path string) []state.DeadLetter {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []state.DeadLetter
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l state.DeadLetter
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		out = append(out, l)
	}
	require.NoError(t, sc.Err())
	return out
}

// deadLetters reads the dead-letter file.
func (e *env) deadLetters() []state.DeadLetter {
	e.t.Helper()
	path := filepath.Join(e.stateDir, state.DeadLetterFile)
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil
	}
	return readDeadLetters(e.t, path)
}

// streamWith starts the daemon with the given writers and waits until the
// snapshot is done and it streams.
func (e *env) streamWith(cfg *config.Config, ws map[string]replicator.Writer) (*running, *prometheus.Registry) {
	e.t.Helper()
	reg := prometheus.NewRegistry()
	mon := monitor.New(reg)
	ctx, cancel := context.WithCancel(context.Background())
	daemon := &running{cancel: cancel, done: make(chan error, 1)}
	go func() {
		daemon.done <- app.Run(ctx, cfg, app.Deps{Logger: quietLogger(), Registry: reg, Monitor: mon, Writers: ws})
	}()
	e.t.Cleanup(func() { daemon.stop() })
	deadline := time.Now().Add(60 * time.Second)
	for mon.Snapshot().Phase != "streaming" {
		select {
		case err := <-daemon.done:
			e.t.Fatalf("the daemon stopped before streaming: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.t.Fatal("the daemon did not stream within 60s")
		}
	}
	return daemon, reg
}

// stillRunning fails the test when the daemon has stopped.
func stillRunning(t *testing.T, daemon *running) {
	t.Helper()
	select {
	case err := <-daemon.done:
		daemon.once.Do(func() {})
		t.Fatalf("the daemon stopped: %v", err)
	default:
	}
}

type letterID struct{ table, key, column string }

func letterIDs(letters []state.DeadLetter) map[letterID]state.DeadLetter {
	out := map[letterID]state.DeadLetter{}
	for _, l := range letters {
		var key string
		for _, v := range l.Key {
			key = string(v)
		}
		out[letterID{l.Table, key, l.Column}] = l
	}
	return out
}

// Invariant 9: a value that cannot be encoded is a rejection of that value.
// In the snapshot and in the stream, the daemon keeps running, the rest of
// the row lands (the target keeps its previous value of the column), the
// dead letter names table, key and column, and later changes are
// acknowledged. A key that cannot be encoded rejects its row as a whole.
func TestPoisonValuesDoNotStopTheDaemon(t *testing.T) {
	e := newEnv(t, poisonSchema)
	e.exec(`INSERT INTO events VALUES (1, 'one', '2024-01-01 00:00:00+00'), (2, 'two', 'infinity'), (3, 'three', '-infinity')`)
	e.exec(`INSERT INTO stamps VALUES ('2024-01-01 00:00:00+00', 'a'), ('infinity', 'bad')`)
	daemon, reg := e.streamWith(e.config(poisonMapping), writers(e))

	events := e.mem.Rows("events")
	require.Len(t, events, 3, "every snapshot row lands")
	require.Equal(t, `"two"`, events["2"]["name"])
	require.NotContains(t, events["2"], "at", "the poison value is left out")
	require.Equal(t, `1704067200000`, events["1"]["at"])
	require.Len(t, e.mem.Rows("stamps"), 1, "a row whose key cannot be encoded is rejected whole")

	e.exec(`INSERT INTO events VALUES (4, 'four', 'infinity'), (5, 'five', '2024-02-02 00:00:00+00')`)
	e.exec(`UPDATE events SET name = 'one b', at = 'infinity' WHERE id = 1`)
	e.exec(`INSERT INTO stamps VALUES ('-infinity', 'bad too'), ('2024-03-03 00:00:00+00', 'c')`)
	e.exec(`INSERT INTO events VALUES (6, 'six', '2024-03-03 00:00:00+00')`)
	committed := e.currentLSN()
	testkit.Eventually(t, 30*time.Second, "the later rows", func() bool {
		rows := e.mem.Rows("events")
		return len(rows) == 6 && rows["1"]["name"] == `"one b"` && rows["6"]["at"] == `1709424000000` && e.mem.Len("stamps") == 2
	})
	testkit.Eventually(t, 30*time.Second, "the transactions with poison values to be acknowledged", func() bool {
		return e.lsnAtLeast(e.slotFlushed(), committed)
	})
	stillRunning(t, daemon)
	events = e.mem.Rows("events")
	require.Equal(t, `1704067200000`, events["1"]["at"], "the target keeps its previous value of a refused column")
	require.Equal(t, `"four"`, events["4"]["name"])
	require.NotContains(t, events["4"], "at")
	require.NoError(t, daemon.stop())

	letters := letterIDs(e.deadLetters())
	require.Len(t, letters, 6, "dead letters %v", letters)
	for _, id := range []letterID{{"events", "2", "at"}, {"events", "3", "at"}, {"events", "4", "at"}, {"events", "1", "at"}} {
		l, ok := letters[id]
		require.True(t, ok, "no dead letter for %v in %v", id, letters)
		require.Equal(t, "public.events", l.Source)
		require.Contains(t, l.Error, "column at")
		require.Nil(t, l.Row)
	}
	require.JSONEq(t, `"infinity"`, string(letters[letterID{"events", "2", "at"}].Value))
	require.Equal(t, "0/0", letters[letterID{"events", "2", "at"}].LSN, "a snapshot row has no LSN")
	require.NotEqual(t, "0/0", letters[letterID{"events", "4", "at"}].LSN)
	for _, key := range []string{`"infinity"`, `"-infinity"`} {
		l, ok := letters[letterID{"stamps", key, ""}]
		require.True(t, ok, "no whole-record dead letter for stamps key %s in %v", key, letters)
		require.Contains(t, l.Error, "key column at")
	}
	require.Equal(t, 4.0, testutil.ToFloat64(metricWithLabels(t, reg, "replicator_dead_letters_total", map[string]string{"source": "public.events"})))
	require.Equal(t, 2.0, testutil.ToFloat64(metricWithLabels(t, reg, "replicator_dead_letters_total", map[string]string{"source": "public.stamps"})))

	status, err := app.Status(context.Background(), e.config(poisonMapping))
	require.NoError(t, err)
	require.Equal(t, 6, status.DeadLetters)
}

// on_reject: halt still halts on a poison value, naming table, key and
// column, and writes no dead letter.
func TestPoisonValueHalts(t *testing.T) {
	for _, phase := range []string{"snapshot", "stream"} {
		t.Run(phase, func(t *testing.T) {
			e := newEnv(t, poisonSchema)
			cfg := e.config(eventsMapping + "    on_reject: halt\n")
			var daemon *running
			if phase == "snapshot" {
				e.exec(`INSERT INTO events VALUES (1, 'one', 'now'), (2, 'two', 'infinity')`)
				daemon = e.start(cfg)
			} else {
				daemon = e.startStreaming(cfg)
				e.exec(`INSERT INTO events VALUES (2, 'two', 'infinity')`)
			}
			select {
			case err := <-daemon.done:
				daemon.once.Do(func() {})
				require.ErrorContains(t, err, "on_reject: halt")
				require.ErrorContains(t, err, "table events")
				require.ErrorContains(t, err, "id=2")
				require.ErrorContains(t, err, "column at")
			case <-time.After(60 * time.Second):
				t.Fatal("the daemon kept running after a poison value with on_reject: halt")
			}
			require.Empty(t, e.deadLetters(), "halting must not also dead-letter")
		})
	}
}

// A value the GPTBots field cannot hold (text in an INT field) is a column
// rejection: the rest of the row lands, the column is dead-lettered, and
// later updates of the row, which resend the bad value with every column,
// still land instead of freezing the row.
func TestGPTBotsFieldRefusesValue(t *testing.T) {
	e := newEnv(t, `CREATE TABLE gb (id int PRIMARY KEY, name text, n text);`)
	fake := gptbotsfake.New(gptbotsfake.Options{APIKey: "gb-key", RequestsPerSecond: -1})
	t.Cleanup(fake.Close)
	require.NoError(t, fake.AddTable("tbl_gb", []gptbotsfake.Field{
		{Name: "id", Type: gptbotsfake.TypeInt, Unique: true},
		{Name: "name", Type: gptbotsfake.TypeText},
		{Name: "n", Type: gptbotsfake.TypeInt},
	}))
	w, err := gptbots.New(gptbots.Config{Name: "mem", BaseURL: fake.URL(), APIKey: "gb-key", RequestsPerSecond: 1000,
		RequestTimeout: 5 * time.Second, BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond}, gptbots.Deps{Logger: quietLogger()})
	require.NoError(t, err)
	rows := func() map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, r := range fake.Rows("tbl_gb") {
			out[fmt.Sprint(r["id"])] = r
		}
		return out
	}

	e.exec(`INSERT INTO gb VALUES (1, 'one', NULL), (2, 'two', 'twelve')`)
	daemon, _ := e.streamWith(e.config("  - source: gb\n    target: mem\n    table: tbl_gb\n"), map[string]replicator.Writer{"mem": w})
	snap := rows()
	require.Len(t, snap, 2)
	require.Equal(t, "two", snap["2"]["name"])
	require.NotContains(t, snap["2"], "n")

	e.exec(`UPDATE gb SET name = 'two b' WHERE id = 2`)
	e.exec(`INSERT INTO gb VALUES (3, 'three', NULL)`)
	committed := e.currentLSN()
	testkit.Eventually(t, 30*time.Second, "the later update and insert", func() bool {
		r := rows()
		return len(r) == 3 && r["2"]["name"] == "two b"
	})
	testkit.Eventually(t, 30*time.Second, "the acknowledgement", func() bool { return e.lsnAtLeast(e.slotFlushed(), committed) })
	stillRunning(t, daemon)
	require.NoError(t, daemon.stop())

	letters := e.deadLetters()
	require.Len(t, letters, 2, "the snapshot row and the update each dead-letter the column: %v", letters)
	for _, l := range letters {
		require.Equal(t, "tbl_gb", l.Table)
		require.JSONEq(t, "2", string(l.Key["id"]))
		require.Equal(t, "n", l.Column)
		require.JSONEq(t, `"twelve"`, string(l.Value))
		require.Contains(t, l.Error, "INT")
	}
}

// status counts the dead letters of the current and the rotated file.
func TestStatusCountsRotatedDeadLetters(t *testing.T) {
	e := newEnv(t, itemsSchema)
	cfg := e.config(itemsMapping)
	require.NoError(t, os.WriteFile(filepath.Join(e.stateDir, state.RotatedDeadLetterFile), []byte("{}\n{}\n{}\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(e.stateDir, state.DeadLetterFile), []byte("{}\n{}\n"), 0o600))
	r, err := app.Status(context.Background(), cfg)
	require.NoError(t, err)
	require.Equal(t, 5, r.DeadLetters)
}

// poisonCases are the values issue 8 saw stop the daemon, one per row. An
// encoder may carry some of them exactly; whichever it cannot encode must
// be a dead letter naming the column, never a stop.
var poisonCases = []struct{ column, literal string }{
	{"f4", `'{NaN}'`},
	{"f8", `'{Infinity,-Infinity,NaN}'`},
	{"tz", `'{"0044-03-15 00:00:00+00 BC"}'`},
	{"tz", `'{"10000-01-01 00:00:00+00"}'`},
	{"d", `'{0044-03-15 BC}'`},
	{"d", `'{10000-01-01}'`},
	{"jb", `ARRAY['{"a":1e400}'::jsonb]`},
	{"ms", `'infinity'`},
	{"ms", `'-infinity'`},
	{"ms", `'0044-03-15 00:00:00+00 BC'`},
	{"ms", `'10000-01-01 00:00:00+00'`},
	{"s", `'infinity'`},
	{"s", `'-infinity'`},
	{"dt", `'infinity'`},
	{"dt", `'0044-03-15 BC'`},
}

const zooSchema = `CREATE TABLE zoo (id int PRIMARY KEY, f4 float4[], f8 float8[], tz timestamptz[], d date[], jb jsonb[],
  ms timestamptz, s timestamptz, dt date, note text);`

const zooMapping = `
  - source: zoo
    target: mem
    table: zoo
    columns:
      id: id
      f4: f4
      f8: f8
      tz: tz
      d: d
      jb: jb
      ms: {name: ms, format: unix_ms}
      s: {name: s, format: unix_s}
      dt: {name: dt, format: unix_ms}
      note: note
`

// Each poison value, in the snapshot and in the stream: the daemon keeps
// running, every row lands with its other columns, later rows are
// acknowledged, and each value either lands or is a dead letter naming its
// column.
func TestEveryPoisonValueKeepsTheDaemonRunning(t *testing.T) {
	e := newEnv(t, zooSchema)
	insert := func(base int) {
		for i, c := range poisonCases {
			e.exec(fmt.Sprintf(`INSERT INTO zoo (id, %s, note) VALUES (%d, %s, 'row %d')`, c.column, base+i, c.literal, base+i))
		}
	}
	insert(1)
	daemon, _ := e.streamWith(e.config(zooMapping), writers(e))
	insert(101)
	e.exec(`INSERT INTO zoo (id, note) VALUES (1000, 'after')`)
	committed := e.currentLSN()
	testkit.Eventually(t, 60*time.Second, "every row", func() bool { return e.mem.Len("zoo") == 2*len(poisonCases)+1 })
	testkit.Eventually(t, 30*time.Second, "the acknowledgement of the later row", func() bool { return e.lsnAtLeast(e.slotFlushed(), committed) })
	stillRunning(t, daemon)
	require.NoError(t, daemon.stop())

	rows := e.mem.Rows("zoo")
	letters := letterIDs(e.deadLetters())
	for _, base := range []int{1, 101} {
		for i, c := range poisonCases {
			id := fmt.Sprint(base + i)
			row := rows[id]
			require.Equal(t, fmt.Sprintf(`"row %s"`, id), row["note"], "the rest of row %s lands", id)
			_, landed := row[c.column]
			l, lettered := letters[letterID{"zoo", id, c.column}]
			require.True(t, landed != lettered, "%s = %s (row %s): landed %v, dead letter %v; want exactly one", c.column, c.literal, id, landed, lettered)
			if lettered {
				require.Contains(t, l.Error, "column "+c.column)
			}
			if base == 1 {
				t.Logf("%s = %s: landed %v, dead letter %q", c.column, c.literal, landed, l.Error)
			}
		}
	}
	for _, c := range []letterID{{"zoo", "8", "ms"}, {"zoo", "108", "ms"}, {"zoo", "12", "s"}} {
		require.Contains(t, letters, c, "±infinity has no Unix time")
	}
}
