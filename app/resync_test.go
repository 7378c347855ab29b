package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/internal/testkit"
)

// emptyTarget deletes every row of a memory target table keyed by an
// integer id, as a person emptying the target table would.
func (e *env) emptyTarget(table string) {
	e.t.Helper()
	var recs []replicator.Record
	for k := range e.mem.Rows(table) {
		recs = append(recs, replicator.Record{Op: replicator.OpDelete, Key: []replicator.Field{{Name: "id", Value: replicator.Value{Kind: replicator.KindInt, Raw: []byte(k)}}}})
	}
	_, err := e.mem.Write(context.Background(), replicator.Batch{Table: replicator.TableSpec{Table: table, Key: []string{"id"}}, Records: recs})
	require.NoError(e.t, err)
	require.Zero(e.t, e.mem.Len(table))
}

// waitStopped returns the daemon's error once it stops by itself.
func waitStopped(t *testing.T, d *running, what string) error {
	t.Helper()
	select {
	case err := <-d.done:
		d.once.Do(func() {})
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("the daemon kept running: %s", what)
		return nil
	}
}

// The recovery the halt message names works: after it the daemon copies the
// table again, moves past the TRUNCATE it answered and keeps streaming.
func TestTruncateHaltRecovery(t *testing.T) {
	e := newEnv(t, itemsSchema)
	cfg := e.config(itemsMapping)
	daemon := e.startStreaming(cfg)
	e.exec(`INSERT INTO items (id, name) SELECT g, 'n' || g FROM generate_series(1, 20) g`)
	e.waitMirror("items", "items", 30*time.Second, "id")

	e.exec(`TRUNCATE items; INSERT INTO items (id, name) VALUES (7, 'same transaction')`)
	e.exec(`INSERT INTO items (id, name) VALUES (8, 'after')`)
	err := waitStopped(t, daemon, "a TRUNCATE with on_truncate: halt")
	require.ErrorContains(t, err, "on_truncate: halt")
	require.ErrorContains(t, err, "replicator resync --config FILE --table public.items")
	require.ErrorContains(t, err, `docs/production.md, "Resyncing one table"`)
	doc, err := os.ReadFile(filepath.Join("..", "docs", "production.md"))
	require.NoError(t, err)
	require.Contains(t, string(doc), "## Resyncing one table", "the message names a section that exists")

	e.exec(`INSERT INTO items (id, name) VALUES (9, 'while stopped')`)
	e.emptyTarget("items")
	_, err = app.Resync(context.Background(), cfg, false, []string{"items"})
	require.NoError(t, err)

	daemon = e.startStreaming(cfg)
	e.waitMirror("items", "items", 60*time.Second, "id")
	e.exec(`INSERT INTO items (id, name) VALUES (10, 'streamed')`)
	e.exec(`UPDATE items SET name = 'updated' WHERE id = 7`)
	e.exec(`DELETE FROM items WHERE id = 8`)
	e.waitMirror("items", "items", 60*time.Second, "id")
	require.NoError(t, daemon.stop())
}

// recreateSlot drops the stopped daemon's slot and creates it again under
// the same name, with changes before, between and after.
func (e *env) recreateSlot() {
	e.t.Helper()
	slot := "slot_" + e.name
	e.exec(`INSERT INTO items (id, name) SELECT g, 'n' || g FROM generate_series(51, 100) g`)
	e.exec(`UPDATE items SET name = 'gap update' WHERE id <= 10`)
	testkit.Eventually(e.t.(*testing.T), 30*time.Second, "the walsender to release the slot", func() bool {
		var active bool
		err := e.db.QueryRow(context.Background(), "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&active)
		return err == nil && !active
	})
	e.exec(`SELECT pg_drop_replication_slot($1)`, slot)
	e.exec(`INSERT INTO items (id, name) SELECT g, 'n' || g FROM generate_series(101, 110) g`)
	e.exec(`DELETE FROM items WHERE id IN (20, 21)`)
	e.exec(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, slot)
	e.exec(`INSERT INTO items (id, name) SELECT g, 'n' || g FROM generate_series(111, 120) g`)
}

func mirrorThenStop(t *testing.T, e *env, cfg *config.Config) {
	daemon := e.startStreaming(cfg)
	e.exec(`INSERT INTO items (id, name) SELECT g, 'n' || g FROM generate_series(1, 50) g`)
	e.waitMirror("items", "items", 30*time.Second, "id")
	require.NoError(t, daemon.stop())
}

// A slot created again under the same name while the daemon was stopped is
// refused with the choice spelled out; the documented resync makes the
// mirror exact.
func TestRecreatedSlotRefused(t *testing.T) {
	e := newEnv(t, itemsSchema)
	cfg := e.config(itemsMapping)
	mirrorThenStop(t, e, cfg)
	e.recreateSlot()

	moved := checkItem(t, app.Check(context.Background(), cfg, app.Deps{Logger: quietLogger(), Writers: writers(e)}), "slot follows")
	require.Equal(t, app.CheckFail, moved.Status, "%+v", moved)
	require.Contains(t, moved.Detail, "replicator resync --config FILE --all")

	err := waitStopped(t, e.start(cfg), "a re-created slot")
	require.True(t, errors.Is(err, app.ErrSlotMismatch), "%v", err)
	require.ErrorContains(t, err, "ahead of the checkpoint")
	require.ErrorContains(t, err, "replicator resync --config FILE --all")
	require.ErrorContains(t, err, "replicator accept-slot --config FILE --yes")
	require.Equal(t, 50, e.mem.Len("items"), "nothing may be streamed from the re-created slot")

	e.emptyTarget("items")
	_, err = app.Resync(context.Background(), cfg, true, nil)
	require.NoError(t, err)
	daemon := e.startStreaming(cfg)
	e.waitMirror("items", "items", 60*time.Second, "id")
	e.exec(`INSERT INTO items (id, name) VALUES (200, 'streamed')`)
	e.exec(`DELETE FROM items WHERE id = 1`)
	e.waitMirror("items", "items", 60*time.Second, "id")
	require.NoError(t, daemon.stop())
}

// accept-slot is the explicit way to give up the gap: the daemon follows
// the new slot, and what happened in between stays missing.
func TestAcceptSlotFollowsRecreatedSlot(t *testing.T) {
	e := newEnv(t, itemsSchema)
	cfg := e.config(itemsMapping)
	mirrorThenStop(t, e, cfg)
	e.recreateSlot()
	_, err := app.AcceptSlot(context.Background(), cfg)
	require.NoError(t, err)

	daemon := e.startStreaming(cfg)
	e.exec(`INSERT INTO items (id, name) VALUES (200, 'streamed')`)
	testkit.Eventually(t, 30*time.Second, "a change after the accepted slot", func() bool { return e.mem.Rows("items")["200"] != nil })
	require.NoError(t, daemon.stop())
	require.Nil(t, e.mem.Rows("items")["51"], "the gap stays a gap")
}

// A state that followed a slot on another server (or database) is refused.
func TestSlotOnAnotherServerRefused(t *testing.T) {
	e := newEnv(t, itemsSchema)
	cfg := e.config(itemsMapping)
	mirrorThenStop(t, e, cfg)

	path := filepath.Join(e.stateDir, "state.json")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(data, &doc))
	id := doc["slot_identity"].(map[string]any)
	require.NotEmpty(t, id["system_id"])
	id["system_id"] = "1"
	data, err = json.Marshal(doc)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o600))

	err = waitStopped(t, e.start(cfg), "a slot on another server")
	require.True(t, errors.Is(err, app.ErrSlotMismatch), "%v", err)
	require.ErrorContains(t, err, "of server 1")
}

// A slot dropped behind the daemon's back is a lost slot: the daemon stops
// and says how to resync, rather than quietly copying over a target that
// still holds rows deleted meanwhile.
func TestDroppedSlotRefused(t *testing.T) {
	e := newEnv(t, itemsSchema)
	cfg := e.config(itemsMapping)
	mirrorThenStop(t, e, cfg)
	testkit.Eventually(t, 30*time.Second, "the walsender to release the slot", func() bool {
		var active bool
		err := e.db.QueryRow(context.Background(), "SELECT active FROM pg_replication_slots WHERE slot_name = $1", "slot_"+e.name).Scan(&active)
		return err == nil && !active
	})
	e.exec(`SELECT pg_drop_replication_slot($1)`, "slot_"+e.name)
	e.exec(`DELETE FROM items WHERE id <= 5`)
	e.exec(`INSERT INTO items (id, name) VALUES (60, 'gap')`)

	err := waitStopped(t, e.start(cfg), "a dropped slot")
	require.ErrorContains(t, err, "no longer exists")
	require.ErrorContains(t, err, "replicator resync --config FILE --all")

	e.emptyTarget("items")
	_, err = app.Resync(context.Background(), cfg, true, nil)
	require.NoError(t, err)
	daemon := e.startStreaming(cfg)
	e.waitMirror("items", "items", 60*time.Second, "id")
	require.NoError(t, daemon.stop())
}
