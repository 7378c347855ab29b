package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/internal/pgtest"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/state"
)

func rejectNamed(name string) func(*replicator.Record) string {
	return func(r *replicator.Record) string {
		if v, ok := r.Field("name"); ok && string(v.Raw) == name {
			return "value rejected by target"
		}
		return ""
	}
}

// Invariant 6: a rejected record is isolated, written to the dead-letter
// file with its reason, table, key and LSN, and the rest lands.
func TestRejectedRecordsGoToDeadLetters(t *testing.T) {
	e := newEnv(t, itemsSchema)
	e.mem.Reject = rejectNamed("bad")
	daemon := e.startStreaming(e.config(itemsMapping))
	e.exec(`INSERT INTO items (id, name) VALUES (1, 'good'), (2, 'bad'), (3, 'good')`)
	testkit.Eventually(t, 30*time.Second, "the good rows to land", func() bool { return e.mem.Len("items") == 2 })
	committed := e.currentLSN()
	testkit.Eventually(t, 15*time.Second, "the batch with a dead letter to be acknowledged", func() bool { return e.lsnAtLeast(e.slotFlushed(), committed) })
	require.NoError(t, daemon.stop())

	f, err := os.Open(filepath.Join(e.stateDir, state.DeadLetterFile))
	require.NoError(t, err)
	defer f.Close()
	var letters []state.DeadLetter
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l state.DeadLetter
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		letters = append(letters, l)
	}
	require.Len(t, letters, 1)
	l := letters[0]
	require.Equal(t, "mem", l.Target)
	require.Equal(t, "items", l.Table)
	require.Equal(t, "public.items", l.Source)
	require.JSONEq(t, "2", string(l.Key["id"]))
	require.JSONEq(t, `"bad"`, string(l.Row["name"]))
	require.Equal(t, "value rejected by target", l.Error)
	require.NotEqual(t, "0/0", l.LSN)
}

func TestRejectHaltStopsTheDaemon(t *testing.T) {
	e := newEnv(t, itemsSchema)
	e.mem.Reject = rejectNamed("bad")
	daemon := e.startStreaming(e.config(itemsMapping + "    on_reject: halt\n"))
	e.exec(`INSERT INTO items (id, name) VALUES (2, 'bad')`)
	select {
	case err := <-daemon.done:
		require.ErrorContains(t, err, "on_reject: halt")
		require.ErrorContains(t, err, "id=2")
	case <-time.After(30 * time.Second):
		t.Fatal("daemon kept running after a rejection with on_reject: halt")
	}
	_, err := os.Stat(filepath.Join(e.stateDir, state.DeadLetterFile))
	require.True(t, os.IsNotExist(err), "halting must not also dead-letter")
}

// Invariant 5: a snapshot stopped part-way resumes from its last confirmed
// chunk instead of starting over, and still meets the stream without a gap.
func TestSnapshotResumesFromLastConfirmedChunk(t *testing.T) {
	e := newEnv(t, itemsSchema)
	e.exec(`INSERT INTO items (id, name) SELECT g, 'n' || g FROM generate_series(1, 10000) g`)
	var written atomic.Int64
	e.mem.BeforeWrite = func(ctx context.Context, b replicator.Batch) error {
		written.Add(int64(len(b.Records)))
		time.Sleep(5 * time.Millisecond)
		return nil
	}
	cfg := e.config(itemsMapping)
	daemon := e.start(cfg)
	testkit.Eventually(t, 30*time.Second, "part of the snapshot to land", func() bool { return written.Load() >= 3000 })
	require.NoError(t, daemon.stop())

	store, err := state.Open(e.stateDir)
	require.NoError(t, err)
	prog := store.Table("public.items")
	require.False(t, prog.Done)
	require.NotEmpty(t, prog.LastKey, "progress must be saved per confirmed chunk")
	require.Greater(t, prog.Rows, int64(0))
	firstRun := written.Load()

	e.exec(`UPDATE items SET name = 'changed' WHERE id IN (1, 9999)`)
	e.exec(`DELETE FROM items WHERE id = 2`)
	daemon = e.start(cfg)
	e.waitMirror("items", "items", 2*time.Minute, "id")
	require.NoError(t, daemon.stop())
	secondRun := written.Load() - firstRun
	require.Less(t, secondRun, int64(10000), "the second run copied everything again instead of resuming (first run %d, second %d)", firstRun, secondRun)
}

func TestTruncatePolicies(t *testing.T) {
	t.Run("halt", func(t *testing.T) {
		e := newEnv(t, itemsSchema)
		daemon := e.startStreaming(e.config(itemsMapping))
		e.exec(`INSERT INTO items (id) VALUES (1)`)
		e.waitMirror("items", "items", 30*time.Second, "id")
		e.exec(`TRUNCATE items`)
		select {
		case err := <-daemon.done:
			require.ErrorContains(t, err, "truncated")
			require.ErrorContains(t, err, "on_truncate")
		case <-time.After(30 * time.Second):
			t.Fatal("a truncate with on_truncate: halt did not stop the daemon")
		}
	})
	t.Run("ignore", func(t *testing.T) {
		e := newEnv(t, itemsSchema)
		daemon := e.startStreaming(e.config(itemsMapping + "    on_truncate: ignore\n"))
		e.exec(`INSERT INTO items (id) VALUES (1)`)
		e.waitMirror("items", "items", 30*time.Second, "id")
		e.exec(`TRUNCATE items`)
		e.exec(`INSERT INTO items (id) VALUES (2)`)
		testkit.Eventually(t, 30*time.Second, "the row after the truncate", func() bool { return e.mem.Len("items") == 2 })
		require.NoError(t, daemon.stop())
	})
}

// A Relation message mid-stream (columns added and dropped) must neither
// stop the daemon nor corrupt rows.
func TestSchemaChangesMidStream(t *testing.T) {
	e := newEnv(t, itemsSchema)
	daemon := e.startStreaming(e.config(itemsMapping))
	e.exec(`INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)`)
	e.waitMirror("items", "items", 30*time.Second, "id")
	e.exec(`ALTER TABLE items ADD COLUMN extra text DEFAULT 'd'`)
	e.exec(`INSERT INTO items (id, name, extra) VALUES (2, 'b', 'x')`)
	e.exec(`ALTER TABLE items DROP COLUMN qty`)
	e.exec(`INSERT INTO items (id, name) VALUES (3, 'c')`)
	e.exec(`UPDATE items SET name = 'a2' WHERE id = 1`)
	testkit.Eventually(t, 30*time.Second, "rows after the schema change", func() bool {
		rows := e.mem.Rows("items")
		return len(rows) == 3 && rows["3"]["extra"] == `"d"` && rows["1"]["name"] == `"a2"`
	})
	require.NoError(t, daemon.stop())
	rows := e.mem.Rows("items")
	require.Equal(t, `"x"`, rows["2"]["extra"])
	require.Equal(t, `1`, rows["1"]["qty"], "a dropped column keeps its last mirrored value")
}

func TestDeletePolicies(t *testing.T) {
	e := newEnv(t, itemsSchema+`CREATE TABLE soft (id int PRIMARY KEY, v text); CREATE TABLE keep (id int PRIMARY KEY, v text);`)
	daemon := e.startStreaming(e.config(`
  - source: soft
    target: mem
    table: soft
    on_delete: {soft: deleted}
  - source: keep
    target: mem
    table: keep
    on_delete: ignore
`))
	e.exec(`INSERT INTO soft VALUES (1, 'a'), (2, 'b'); INSERT INTO keep VALUES (1, 'a')`)
	e.exec(`DELETE FROM soft WHERE id = 1; DELETE FROM keep WHERE id = 1`)
	testkit.Eventually(t, 30*time.Second, "the soft delete", func() bool { return e.mem.Rows("soft")["1"]["deleted"] == "true" })
	require.Equal(t, `"a"`, e.mem.Rows("soft")["1"]["v"])
	require.Len(t, e.mem.Rows("keep"), 1)
	require.NoError(t, daemon.stop())
}

func TestKeyedByNonPrimaryColumnNeedsReplicaIdentity(t *testing.T) {
	e := newEnv(t, `CREATE TABLE u (id int PRIMARY KEY, code text UNIQUE NOT NULL, v text);`)
	err := runOnce(e, `
  - source: u
    target: mem
    table: u
    key: [code]
`)
	require.ErrorContains(t, err, "REPLICA IDENTITY FULL")

	e.exec(`ALTER TABLE u REPLICA IDENTITY FULL`)
	daemon := e.start(e.config(`
  - source: u
    target: mem
    table: u
    key: [code]
`))
	e.exec(`INSERT INTO u VALUES (1, 'a', 'x'), (2, 'b', 'y')`)
	e.exec(`UPDATE u SET code = 'c' WHERE id = 1`)
	e.exec(`DELETE FROM u WHERE id = 2`)
	e.waitMirror("u", "u", 30*time.Second, "code")
	require.NoError(t, daemon.stop())
}

// runOnce runs the daemon until it fails or 20 s pass.
func runOnce(e *env, mappings string) error {
	d := e.start(e.config(mappings))
	select {
	case err := <-d.done:
		d.once.Do(func() {})
		return err
	case <-time.After(20 * time.Second):
		return d.stop()
	}
}

func TestPreflightNamesEveryProblem(t *testing.T) {
	e := newEnv(t, `CREATE TABLE nokey (a int, b text);`)
	err := runOnce(e, `
  - source: missing
    target: mem
    table: m
  - source: nokey
    target: mem
    table: n
`)
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, "public.missing: table not found")
	require.Contains(t, msg, "public.nokey: the table has no primary key")
	var slots, pubs int
	require.NoError(t, e.db.QueryRow(context.Background(), "SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1), (SELECT count(*) FROM pg_publication)", "slot_"+e.name).Scan(&slots, &pubs))
	require.Zero(t, slots, "nothing may be created before the checks pass")
	require.Zero(t, pubs)
}

func TestPreflightRoleWithoutReplication(t *testing.T) {
	e := newEnv(t, itemsSchema)
	dsn, err := cluster.CreateRole(context.Background(), "noreplication_"+e.name, false)
	require.NoError(t, err)
	e.dsn, err = pgtest.WithDatabase(dsn, e.name)
	require.NoError(t, err)
	err = runOnce(e, itemsMapping)
	require.ErrorContains(t, err, "may not replicate")
	require.ErrorContains(t, err, "WITH REPLICATION")
}

// TestPreflightUnreachableDatabase: a server that does not answer may be
// down for a while, so the daemon keeps trying and says why meanwhile.
func TestPreflightUnreachableDatabase(t *testing.T) {
	e := newEnv(t, "")
	e.dsn = "postgres://nobody:secret-password@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"
	mon := monitor.New(prometheus.NewRegistry())
	d := e.startWithMonitor(e.config(itemsMapping), mon, io.Discard)
	testkit.Eventually(t, 30*time.Second, "a failed attempt", func() bool { return mon.Snapshot().ReconnectAttempt >= 1 })
	msg := mon.Snapshot().LastError
	require.Contains(t, msg, "connect to 127.0.0.1:1")
	require.Contains(t, msg, "check source.dsn")
	require.NotContains(t, msg, "secret-password")
	require.NoError(t, d.stop())
}
