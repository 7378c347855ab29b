package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// larkFake starts a Feishu fake with one table and returns it with the
// YAML of a target "lark" pointing at it.
func larkFake(t *testing.T, table string, cols []feishufake.Column) (*feishufake.Server, string) {
	t.Helper()
	return larkFakeWith(t, feishufake.Options{RequestsPerSecond: -1}, table, cols)
}

// larkFakeWith is larkFake with the fake's options given.
func larkFakeWith(t *testing.T, opts feishufake.Options, table string, cols []feishufake.Column) (*feishufake.Server, string) {
	t.Helper()
	fake := feishufake.New(opts)
	t.Cleanup(fake.Close)
	require.NoError(t, fake.AddTable(table, cols))
	return fake, fmt.Sprintf(`
  lark:
    type: feishu
    base_url: %s
    workspace_id: %s
    user_access_token: %s
`, fake.URL(), fake.Options().WorkspaceID, fake.AccessToken())
}

// fakeRowsByID reads the fake's table as column → JSON text, by id.
func fakeRowsByID(t *testing.T, fake *feishufake.Server, table string) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, row := range fake.Rows(table) {
		m := map[string]string{}
		for k, v := range row {
			b, err := json.Marshal(v)
			require.NoError(t, err)
			m[k] = string(b)
		}
		out[m["id"]] = m
	}
	return out
}

// An update that leaves a TOASTed value unchanged must still land when that
// value's target column is NOT NULL: the target checks the proposed row of
// an upsert before it finds the existing one, so a partial upsert would be
// rejected (and, dead-lettered, lost).
func TestUnchangedToastIntoNotNullColumn(t *testing.T) {
	// docs_full: with REPLICA IDENTITY FULL the old row holds the value.
	e := newEnv(t, `CREATE TABLE docs (id bigint PRIMARY KEY, n integer, body text NOT NULL);
ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE TABLE docs_full (LIKE docs INCLUDING ALL);
ALTER TABLE docs_full REPLICA IDENTITY FULL;`)
	cols := []feishufake.Column{
		{Name: "id", DataType: "bigint", IsPrimaryKey: true},
		{Name: "n", DataType: "integer", AllowNull: true},
		{Name: "body", DataType: "text"},
	}
	fake, targets := larkFake(t, "docs", cols)
	require.NoError(t, fake.AddTable("docs_full", cols))
	cfg := e.configWithTargets(targets, `
  - source: docs
    target: lark
    table: docs
  - source: docs_full
    target: lark
    table: docs_full
`)
	body := strings.Repeat("large value ", 1000)
	e.exec(`INSERT INTO docs VALUES (1, 0, $1)`, body)
	e.exec(`INSERT INTO docs_full VALUES (1, 0, $1)`, body)
	daemon := e.startStreaming(cfg)
	testkit.Eventually(t, 30*time.Second, "the snapshot", func() bool {
		return fakeRowsByID(t, fake, "docs")["1"] != nil && fakeRowsByID(t, fake, "docs_full")["1"] != nil
	})
	for i := 1; i <= 5; i++ {
		e.exec(`UPDATE docs SET n = $1 WHERE id = 1`, i)
		e.exec(`UPDATE docs_full SET n = $1 WHERE id = 1`, i)
	}
	for _, table := range []string{"docs", "docs_full"} {
		testkit.Eventually(t, 30*time.Second, "all five updates of "+table, func() bool { return fakeRowsByID(t, fake, table)["1"]["n"] == "5" })
	}
	require.NoError(t, daemon.stop())
	for _, table := range []string{"docs", "docs_full"} {
		require.Equal(t, fmt.Sprintf("%q", body), fakeRowsByID(t, fake, table)["1"]["body"], table)
	}
	require.Empty(t, e.deadLetters(), "no update may be dead-lettered")
}

// A row whose key is NULL cannot be addressed on the target: in the
// snapshot and in the stream it goes to the dead-letter file with a clear
// reason, while the daemon keeps running and the other rows land.
func TestNullKeysAreDeadLettered(t *testing.T) {
	e := newEnv(t, `CREATE TABLE u (id int PRIMARY KEY, code text UNIQUE, v text);
ALTER TABLE u REPLICA IDENTITY FULL;
INSERT INTO u VALUES (1, 'a', 'x'), (2, NULL, 'snap-null'), (3, 'b', 'y'), (4, NULL, 'snap-null');
INSERT INTO u SELECT i, NULL, 'snap-null' FROM generate_series(10, 12) i;`)
	cfg := e.config(`
  - source: u
    target: mem
    table: u
    key: [code]
`)
	// Chunks of two: the NULL-key rows take three reads.
	cfg.Pipeline.SnapshotChunkRows = 2
	daemon := e.startStreaming(cfg)
	e.exec(`INSERT INTO u VALUES (5, NULL, 'stream-null'), (6, 'c', 'z')`)
	e.exec(`UPDATE u SET v = 'x2' WHERE id = 1`)
	testkit.Eventually(t, 30*time.Second, "the rows with a key", func() bool {
		rows := e.mem.Rows("u")
		return len(rows) == 3 && rows[`"c"`]["v"] == `"z"` && rows[`"a"`]["v"] == `"x2"`
	})
	var reasons []string
	testkit.Eventually(t, 30*time.Second, "six dead letters", func() bool { return len(e.deadLetters()) == 6 })
	ids := map[string]bool{}
	for _, dl := range e.deadLetters() {
		reasons = append(reasons, dl.Error)
		ids[string(dl.Row["id"])] = true
		require.Equal(t, "null", string(dl.Key["code"]))
		require.Contains(t, []string{`"snap-null"`, `"stream-null"`}, string(dl.Row["v"]))
	}
	require.Equal(t, map[string]bool{"2": true, "4": true, "10": true, "11": true, "12": true, "5": true}, ids, "every row with a NULL key, once")
	require.Contains(t, reasons[0], "key column code is NULL; the target cannot address this row")
	select {
	case err := <-daemon.done:
		t.Fatalf("the daemon stopped: %v", err)
	default:
	}
	require.NoError(t, daemon.stop())

	// The same on a restart: the stream's NULL key is not a fatal error.
	e.exec(`INSERT INTO u VALUES (7, NULL, 'after-restart'), (8, 'd', 'w')`)
	daemon = e.start(cfg)
	testkit.Eventually(t, 30*time.Second, "the row after the restart", func() bool { return len(e.mem.Rows("u")) == 4 })
	testkit.Eventually(t, 30*time.Second, "the seventh dead letter", func() bool { return len(e.deadLetters()) == 7 })
	require.NoError(t, daemon.stop())
}

func TestCheckWarnsAboutNullableAndUnsentKeys(t *testing.T) {
	e := newEnv(t, `CREATE TABLE u (id int PRIMARY KEY, code text UNIQUE, v text);
CREATE TABLE ok (id int PRIMARY KEY, v text);`)
	cfg := e.config(`
  - source: u
    target: mem
    table: u
    key: [code]
    on_delete: ignore
  - source: ok
    target: mem
    table: ok
`)
	items := app.Check(context.Background(), cfg, app.Deps{Logger: quietLogger(), Writers: writers(e)})
	u := checkItem(t, items, "table public.u")
	require.Equal(t, app.CheckWarn, u.Status, "%+v", u)
	require.Contains(t, u.Detail, "key columns code allow NULL")
	require.Contains(t, u.Detail, "does not send the old key")
	require.Contains(t, u.Detail, "REPLICA IDENTITY FULL")
	require.Equal(t, app.CheckOK, checkItem(t, items, "table public.ok").Status)
}

// Under a copy-every-column mapping, a source column the target lacks is
// left out: the rest of each row keeps flowing, nothing is dead-lettered,
// a restart starts, and check shows it.
func TestColumnTheTargetLacksIsLeftOut(t *testing.T) {
	e := newEnv(t, `CREATE TABLE items (id bigint PRIMARY KEY, name text, qty integer);`)
	fake, targets := larkFake(t, "items", []feishufake.Column{
		{Name: "id", DataType: "bigint", IsPrimaryKey: true},
		{Name: "name", DataType: "text", AllowNull: true},
		{Name: "qty", DataType: "integer", AllowNull: true},
	})
	cfg := e.configWithTargets(targets, `
  - source: items
    target: lark
    table: items
`)
	e.exec(`INSERT INTO items VALUES (1, 'a', 1)`)
	mon := monitor.New(prometheus.NewRegistry())
	daemon := e.startStreamingWith(cfg, mon, io.Discard)
	testkit.Eventually(t, 30*time.Second, "the snapshot", func() bool { return fakeRowsByID(t, fake, "items")["1"] != nil })
	e.exec(`ALTER TABLE items ADD COLUMN extra text`)
	e.exec(`INSERT INTO items VALUES (2, 'b', 2, 'x')`)
	e.exec(`UPDATE items SET name = 'a2', extra = 'y' WHERE id = 1`)
	testkit.Eventually(t, 30*time.Second, "the changes after ADD COLUMN", func() bool {
		rows := fakeRowsByID(t, fake, "items")
		return rows["2"]["name"] == `"b"` && rows["1"]["name"] == `"a2"`
	})
	e.exec(`ALTER TABLE items RENAME COLUMN qty TO quantity`)
	e.exec(`INSERT INTO items VALUES (3, 'c', 3, 'z')`)
	testkit.Eventually(t, 30*time.Second, "the row after RENAME COLUMN", func() bool { return fakeRowsByID(t, fake, "items")["3"]["name"] == `"c"` })
	require.Equal(t, "null", fakeRowsByID(t, fake, "items")["3"]["qty"], "the renamed column is left out, not written to another column")
	require.Contains(t, tableError(t, mon, "public.items"), "quantity, extra are not in target table items", "the status page shows it")
	require.NoError(t, daemon.stop())

	e.exec(`UPDATE items SET name = 'b2' WHERE id = 2`)
	mon = monitor.New(prometheus.NewRegistry())
	daemon = e.startStreamingWith(cfg, mon, io.Discard)
	require.Contains(t, tableError(t, mon, "public.items"), "quantity, extra are not in target table items", "the status page shows it after a restart")
	testkit.Eventually(t, 30*time.Second, "the change after the restart", func() bool { return fakeRowsByID(t, fake, "items")["2"]["name"] == `"b2"` })
	require.NoError(t, daemon.stop())
	require.Empty(t, e.deadLetters())

	items := app.Check(context.Background(), cfg, app.Deps{Logger: quietLogger(), Writers: writers(e)})
	left := checkItem(t, items, "columns of public.items")
	require.Equal(t, app.CheckWarn, left.Status)
	require.Contains(t, left.Detail, "quantity, extra")
	require.Equal(t, app.CheckOK, checkItem(t, items, "target lark").Status)
}

// A mapped column renamed or dropped in the source halts the daemon by
// default, naming the table, the column and the fix, and a restart with
// the same configuration says the same; with on_missing_column: skip the
// daemon goes on without it, also after a restart.
func TestMissingMappedColumn(t *testing.T) {
	cols := []feishufake.Column{
		{Name: "id", DataType: "bigint", IsPrimaryKey: true},
		{Name: "name", DataType: "text", AllowNull: true},
		{Name: "qty", DataType: "integer", AllowNull: true},
	}
	mapping := func(policy string) string {
		return `
  - source: items
    target: lark
    table: items
    columns: {id: id, name: name, qty: qty}
` + policy
	}
	for _, change := range []string{"RENAME COLUMN qty TO quantity", "DROP COLUMN qty"} {
		t.Run(strings.Fields(change)[0]+"/halt", func(t *testing.T) {
			e := newEnv(t, `CREATE TABLE items (id bigint PRIMARY KEY, name text, qty integer);`)
			fake, targets := larkFake(t, "items", cols)
			cfg := e.configWithTargets(targets, mapping(""))
			e.exec(`INSERT INTO items VALUES (1, 'a', 1)`)
			daemon := e.startStreaming(cfg)
			testkit.Eventually(t, 30*time.Second, "the snapshot", func() bool { return fakeRowsByID(t, fake, "items")["1"] != nil })
			// An added column the mapping does not list changes nothing.
			e.exec(`ALTER TABLE items ADD COLUMN extra text`)
			e.exec(`ALTER TABLE items ` + change)
			e.exec(`INSERT INTO items (id, name, extra) VALUES (2, 'b', 'x')`)
			requireHalt(t, daemon)
			err := runUntilExit(t, e, cfg)
			require.ErrorContains(t, err, "column qty (written to target column qty) is not in the source table")
			require.ErrorContains(t, err, "on_missing_column: skip")
		})
		t.Run(strings.Fields(change)[0]+"/skip", func(t *testing.T) {
			e := newEnv(t, `CREATE TABLE items (id bigint PRIMARY KEY, name text, qty integer);`)
			fake, targets := larkFake(t, "items", cols)
			cfg := e.configWithTargets(targets, mapping("    on_missing_column: skip\n"))
			e.exec(`INSERT INTO items VALUES (1, 'a', 1)`)
			daemon := e.startStreaming(cfg)
			testkit.Eventually(t, 30*time.Second, "the snapshot", func() bool { return fakeRowsByID(t, fake, "items")["1"] != nil })
			// An added column the mapping does not list changes nothing.
			e.exec(`ALTER TABLE items ADD COLUMN extra text`)
			e.exec(`ALTER TABLE items ` + change)
			e.exec(`INSERT INTO items (id, name, extra) VALUES (2, 'b', 'x')`)
			testkit.Eventually(t, 30*time.Second, "the row after the change", func() bool { return fakeRowsByID(t, fake, "items")["2"]["name"] == `"b"` })
			require.NoError(t, daemon.stop())
			e.exec(`UPDATE items SET name = 'a2' WHERE id = 1`)
			daemon = e.start(cfg)
			testkit.Eventually(t, 30*time.Second, "the change after the restart", func() bool { return fakeRowsByID(t, fake, "items")["1"]["name"] == `"a2"` })
			require.NoError(t, daemon.stop())
			require.Equal(t, "1", fakeRowsByID(t, fake, "items")["1"]["qty"], "the target column keeps its last value")
			require.Empty(t, e.deadLetters())
		})
	}
}

// requireHalt waits for the daemon to stop on its own with the message
// about the missing column.
func requireHalt(t *testing.T, daemon *running) {
	t.Helper()
	select {
	case err := <-daemon.done:
		daemon.once.Do(func() {})
		require.ErrorContains(t, err, "mapping public.items: column qty (written to target column qty) is not in the source table")
		require.ErrorContains(t, err, "on_missing_column: skip")
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not halt on a missing mapped column")
	}
}

func runUntilExit(t *testing.T, e *env, cfg *config.Config) error {
	t.Helper()
	d := e.start(cfg)
	select {
	case err := <-d.done:
		d.once.Do(func() {})
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not stop")
		return nil
	}
}

// After a rename, the fixed mapping names the new column; a restart replays
// changes from before the rename, described by the old columns. Those are
// older rows, not a missing column: the daemon must not halt on them.
func TestFixedMappingReplaysChangesFromBeforeARename(t *testing.T) {
	e := newEnv(t, `CREATE TABLE items (id bigint PRIMARY KEY, name text, qty integer);`)
	fake, targets := larkFake(t, "items", []feishufake.Column{
		{Name: "id", DataType: "bigint", IsPrimaryKey: true},
		{Name: "name", DataType: "text", AllowNull: true},
		{Name: "qty", DataType: "integer", AllowNull: true},
	})
	e.exec(`INSERT INTO items VALUES (1, 'a', 1)`)
	daemon := e.startStreaming(e.configWithTargets(targets, `
  - source: items
    target: lark
    table: items
    columns: {id: id, name: name, qty: qty}
`))
	testkit.Eventually(t, 30*time.Second, "the snapshot", func() bool { return fakeRowsByID(t, fake, "items")["1"] != nil })
	require.NoError(t, daemon.stop())

	e.exec(`INSERT INTO items VALUES (2, 'b', 2)`)
	e.exec(`ALTER TABLE items RENAME COLUMN qty TO quantity`)
	e.exec(`INSERT INTO items VALUES (3, 'c', 3)`)
	daemon = e.start(e.configWithTargets(targets, `
  - source: items
    target: lark
    table: items
    columns: {id: id, name: name, quantity: qty}
`))
	testkit.Eventually(t, 30*time.Second, "the rows from before and after the rename", func() bool {
		rows := fakeRowsByID(t, fake, "items")
		return rows["2"]["name"] == `"b"` && rows["3"]["qty"] == "3"
	})
	require.NoError(t, daemon.stop())
	require.Empty(t, e.deadLetters())
}

func tableError(t *testing.T, mon *monitor.Monitor, source string) string {
	t.Helper()
	for _, tb := range mon.Snapshot().Tables {
		if tb.Source == source {
			return tb.LastError
		}
	}
	t.Fatalf("no table %s in the monitor", source)
	return ""
}
