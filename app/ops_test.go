package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/internal/pgtest"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

func checkItem(t *testing.T, items []app.CheckItem, prefix string) app.CheckItem {
	t.Helper()
	for _, it := range items {
		if strings.HasPrefix(it.Name, prefix) {
			return it
		}
	}
	t.Fatalf("no check item %q in %+v", prefix, items)
	return app.CheckItem{}
}

func TestCheckNamesEachProblem(t *testing.T) {
	e := newEnv(t, itemsSchema+`CREATE TABLE nokey (a int, b text);`)
	fake := feishufake.New(feishufake.Options{})
	t.Cleanup(fake.Close)
	require.NoError(t, fake.AddTable("items", []feishufake.Column{{Name: "id", DataType: "bigint", IsPrimaryKey: true}, {Name: "name", DataType: "text", AllowNull: true}}))
	cfg := e.configWithTargets(fmt.Sprintf(`
  lark:
    type: feishu
    base_url: %s
    workspace_id: %s
    user_access_token: %s
`, fake.URL(), fake.Options().WorkspaceID, fake.AccessToken()), `
  - source: items
    target: lark
    table: items
    columns: {id: id, name: name, qty: qty}
  - source: nokey
    target: mem
    table: nokey
`)
	items := app.Check(context.Background(), cfg, app.Deps{Logger: quietLogger(), Writers: nil})
	for _, want := range []string{"configuration valid", "database reachable", "wal_level = logical", "role may replicate", "slot ", "publication "} {
		require.Equal(t, app.CheckOK, checkItem(t, items, want).Status, "%s: %+v", want, checkItem(t, items, want))
	}
	require.Equal(t, app.CheckWarn, checkItem(t, items, "max_slot_wal_keep_size").Status, "the test cluster keeps WAL without limit")
	nokey := checkItem(t, items, "table public.nokey")
	require.Equal(t, app.CheckFail, nokey.Status)
	require.Contains(t, nokey.Detail, "no primary key")
	target := checkItem(t, items, "target lark")
	require.Equal(t, app.CheckFail, target.Status)
	require.Contains(t, target.Detail, "qty", "the missing target column must be named")
	require.Equal(t, app.CheckOK, checkItem(t, items, "table public.items").Status)
}

func TestCheckWALLevelReplica(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{Settings: map[string]string{"wal_level": "replica"}})
	dsn, err := c.CreateDatabase(context.Background(), "walcheck")
	require.NoError(t, err)
	e := newEnv(t, "")
	e.dsn = dsn
	items := app.Check(context.Background(), e.config(itemsMapping), app.Deps{Logger: quietLogger()})
	wal := checkItem(t, items, "wal_level")
	require.Equal(t, app.CheckFail, wal.Status)
	require.Contains(t, wal.Detail, `"replica"`)
	require.Contains(t, wal.Detail, "wal_level = logical")
}

func TestStatusTeardownAndResync(t *testing.T) {
	e := newEnv(t, itemsSchema)
	e.mem.Reject = rejectNamed("bad")
	cfg := e.config(itemsMapping)
	daemon := e.startStreaming(cfg)
	e.exec(`INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'bad')`)
	testkit.Eventually(t, 30*time.Second, "the good row", func() bool { return e.mem.Len("items") == 1 })
	committed := e.currentLSN()
	testkit.Eventually(t, 15*time.Second, "acknowledgement", func() bool { return e.lsnAtLeast(e.slotFlushed(), committed) })

	r, err := app.Status(context.Background(), cfg)
	require.NoError(t, err)
	require.True(t, r.Slot.Exists)
	require.True(t, r.Slot.Active)
	require.Equal(t, 1, r.DeadLetters)
	require.Len(t, r.Tables, 1)
	require.True(t, r.Tables[0].SnapshotDone)
	require.NoError(t, daemon.stop())
	r, err = app.Status(context.Background(), cfg)
	require.NoError(t, err)
	require.True(t, e.lsnAtLeast(r.Checkpoint, committed), "saved checkpoint %s must cover %s", r.Checkpoint, committed)
	require.False(t, r.Slot.Active)

	done, err := app.Teardown(context.Background(), cfg)
	require.NoError(t, err)
	require.Len(t, done, 3)
	require.Empty(t, e.slotFlushed(), "the slot must be gone")
	var pubs int
	require.NoError(t, e.db.QueryRow(context.Background(), "SELECT count(*) FROM pg_publication").Scan(&pubs))
	require.Zero(t, pubs)

	// The next run creates the slot again and copies the table anew.
	e.exec(`INSERT INTO items (id, name) VALUES (3, 'c')`)
	daemon = e.start(cfg)
	testkit.Eventually(t, 30*time.Second, "the resync", func() bool { return e.mem.Len("items") == 2 })
	require.NoError(t, daemon.stop())
}

func TestDryRunSendsAndAcknowledgesNothing(t *testing.T) {
	e := newEnv(t, itemsSchema)
	e.exec(`INSERT INTO items (id, name) VALUES (1, 'a')`)
	var out testkit.LockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, e.config(itemsMapping), app.Deps{Logger: quietLogger(), DryRun: &out})
	}()
	testkit.Eventually(t, 30*time.Second, "the snapshot row printed", func() bool { return strings.Contains(out.String(), `"name":"a"`) })
	e.exec(`INSERT INTO items (id, name) VALUES (2, 'b')`)
	e.exec(`DELETE FROM items WHERE id = 1`)
	testkit.Eventually(t, 30*time.Second, "streamed writes printed", func() bool {
		return strings.Contains(out.String(), `"name":"b"`) && strings.Contains(out.String(), `"op":"delete"`)
	})
	time.Sleep(2 * time.Second)
	cancel()
	require.NoError(t, <-done)
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "every line is JSON: %s", line)
		require.Equal(t, "mem", m["target"])
	}
	require.Zero(t, e.mem.Len("items"), "nothing may reach the target")
	require.Empty(t, e.slotFlushed(), "a dry run leaves no slot behind")
	_, err := os.Stat(filepath.Join(e.stateDir, "state.json"))
	require.True(t, os.IsNotExist(err), "a dry run saves no progress")
}

// Invariant 7 (the heartbeat half): while the mapped table is idle and
// another database of the cluster is written, the slot keeps moving.
func TestHeartbeatAdvancesIdleSlot(t *testing.T) {
	e := newEnv(t, itemsSchema)
	otherDSN, err := cluster.CreateDatabase(context.Background(), e.name+"_other")
	require.NoError(t, err)
	other := &env{t: t, dsn: otherDSN, db: mustConnect(t, otherDSN)}
	other.exec(`CREATE TABLE busy (id serial PRIMARY KEY, v text)`)

	reg := prometheus.NewRegistry()
	mon := monitor.New(reg)
	cfg := e.config(itemsMapping)
	cfg.Source.Heartbeat = time.Second
	r := &running{done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.done <- app.Run(ctx, cfg, app.Deps{Logger: quietLogger(), Registry: reg, Monitor: mon, Writers: writers(e)})
	}()
	t.Cleanup(func() { r.stop() })
	testkit.Eventually(t, 30*time.Second, "streaming", func() bool { return mon.Snapshot().Phase == "streaming" })

	for i := 0; i < 10; i++ {
		other.exec(`INSERT INTO busy (v) SELECT 'x' FROM generate_series(1, 200)`)
	}
	target := other.currentLSN()
	testkit.Eventually(t, 30*time.Second, "the idle slot to pass the other database's writes", func() bool { return e.lsnAtLeast(e.slotFlushed(), target) })
	testkit.Eventually(t, 10*time.Second, "a heartbeat", func() bool {
		return testutil.ToFloat64(metricByName(t, reg, "replicator_heartbeats_total")) > 0
	})
	require.NoError(t, r.stop())
}

func TestMetricsAfterKnownWorkload(t *testing.T) {
	e := newEnv(t, itemsSchema)
	e.mem.Reject = rejectNamed("bad")
	reg := prometheus.NewRegistry()
	mon := monitor.New(reg)
	cfg := e.config(itemsMapping)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- app.Run(ctx, cfg, app.Deps{Logger: quietLogger(), Registry: reg, Monitor: mon, Writers: writers(e)})
	}()
	t.Cleanup(func() { r.stop() })
	testkit.Eventually(t, 30*time.Second, "streaming", func() bool { return mon.Snapshot().Phase == "streaming" })

	e.exec(`INSERT INTO items (id, name) SELECT g, 'n' FROM generate_series(1, 10) g`)
	testkit.Eventually(t, 30*time.Second, "inserts", func() bool { return e.mem.Len("items") == 10 })
	e.exec(`UPDATE items SET qty = 1 WHERE id <= 5`)
	testkit.Eventually(t, 30*time.Second, "updates", func() bool { return e.mem.Rows("items")["5"]["qty"] == "1" })
	e.exec(`DELETE FROM items WHERE id > 8`)
	testkit.Eventually(t, 30*time.Second, "deletes", func() bool { return e.mem.Len("items") == 8 })
	e.exec(`INSERT INTO items (id, name) VALUES (100, 'bad')`)
	testkit.Eventually(t, 30*time.Second, "the dead letter", func() bool { return mon.Snapshot().Tables[0].DeadLetters == 1 })

	rows := func(op string) float64 {
		return testutil.ToFloat64(metricWithLabels(t, reg, "replicator_rows_total", map[string]string{"source": "public.items", "operation": op}))
	}
	require.Equal(t, 15.0, rows("upsert"))
	require.Equal(t, 2.0, rows("delete"))
	require.Equal(t, 1.0, testutil.ToFloat64(metricByName(t, reg, "replicator_dead_letters_total")))
	require.Equal(t, 1.0, testutil.ToFloat64(metricByName(t, reg, "replicator_streaming")))
	for _, name := range []string{"replicator_lag_bytes", "replicator_lag_seconds", "replicator_snapshot_rows", "replicator_in_flight_bytes", "replicator_batch_rows"} {
		metricByName(t, reg, name)
	}
	require.NoError(t, r.stop())
}
