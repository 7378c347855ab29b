package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/state"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// likesSchema has a conflict key that is not the primary key: a composite
// unique constraint, which is also the replica identity so that deletes
// carry it.
const likesSchema = `
CREATE TABLE likes (
  id bigserial PRIMARY KEY,
  user_id bigint NOT NULL,
  product_id bigint NOT NULL,
  note text,
  CONSTRAINT likes_pair UNIQUE (user_id, product_id)
);
ALTER TABLE likes REPLICA IDENTITY USING INDEX likes_pair;
INSERT INTO likes (user_id, product_id, note) SELECT g % 7, g, 'seed ' || g FROM generate_series(1, 40) g;
`

const likesMapping = `
  - source: public.likes
    target: lark
    table: likes
    key: [user_id, product_id]
    columns: {user_id: user_id, product_id: product_id, note: note}
`

// likesFake is a Feishu workspace whose likes table is what the real API
// describes: _id NOT NULL without a default, and the key's composite unique
// constraint invisible in the schema answer (given only when withUnique).
func likesFake(t *testing.T, withUnique bool) *feishufake.Server {
	fake := feishufake.New(feishufake.Options{RequestsPerSecond: -1})
	t.Cleanup(fake.Close)
	var unique [][]string
	if withUnique {
		unique = append(unique, []string{"user_id", "product_id"})
	}
	require.NoError(t, fake.AddTable("likes", []feishufake.Column{
		{Name: "user_id", DataType: "bigint"},
		{Name: "product_id", DataType: "bigint"},
		{Name: "note", DataType: "text", AllowNull: true},
	}, unique...))
	return fake
}

func larkTarget(fake *feishufake.Server) string {
	return fmt.Sprintf(`
  lark:
    type: feishu
    base_url: %s
    workspace_id: %s
    user_access_token: %s
    requests_per_second: 50
`, fake.URL(), fake.Options().WorkspaceID, fake.AccessToken())
}

// likesDiff compares the source's likes with the fake's, by key.
func likesDiff(t *testing.T, e *env, fake *feishufake.Server) string {
	rows, err := e.db.Query(context.Background(), `SELECT user_id::text || '|' || product_id::text, note FROM likes`)
	require.NoError(t, err)
	want := map[string]*string{}
	for rows.Next() {
		var k string
		var note *string
		require.NoError(t, rows.Scan(&k, &note))
		want[k] = note
	}
	require.NoError(t, rows.Err())
	got := map[string]*string{}
	for _, r := range fake.Rows("likes") {
		if r["_id"] == nil {
			return "a row without _id"
		}
		k := fmt.Sprintf("%v|%v", r["user_id"], r["product_id"])
		var note *string
		if s, ok := r["note"].(string); ok {
			note = &s
		}
		got[k] = note
	}
	var diffs []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			diffs = append(diffs, "missing "+k)
		case (w == nil) != (g == nil) || (w != nil && *w != *g):
			diffs = append(diffs, "differs "+k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "stale "+k)
		}
	}
	slices.Sort(diffs)
	return strings.Join(diffs[:min(5, len(diffs))], ", ")
}

func waitLikes(t *testing.T, e *env, fake *feishufake.Server) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	diff := ""
	for time.Now().Before(deadline) {
		if diff = likesDiff(t, e, fake); diff == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the Feishu likes table never matched the source: %s", diff)
}

// TestFeishuCompositeKeyWithSystemID starts the daemon against a Feishu
// table as the real API describes it (_id without a default, a composite
// unique key that the schema answer cannot show and that is not the
// primary key) and mirrors it: snapshot, then streamed inserts, updates,
// key changes and deletes.
func TestFeishuCompositeKeyWithSystemID(t *testing.T) {
	e := newEnv(t, likesSchema)
	fake := likesFake(t, true)
	cfg := e.configWithTargets(larkTarget(fake), likesMapping)

	items := app.Check(context.Background(), cfg, app.Deps{Logger: quietLogger()})
	target := checkItem(t, items, "target lark")
	require.Equal(t, app.CheckWarn, target.Status, target.Detail)
	require.Contains(t, target.Detail, "key (user_id, product_id)")
	require.Equal(t, 1, strings.Count(target.Detail, "not verified unique"), target.Detail)

	daemon := e.startStreaming(cfg)
	waitLikes(t, e, fake)
	e.exec(`INSERT INTO likes (user_id, product_id, note) VALUES (100, 1, 'new'), (100, 2, NULL)`)
	e.exec(`UPDATE likes SET note = 'changed' WHERE product_id IN (3, 4, 5)`)
	e.exec(`UPDATE likes SET note = NULL WHERE product_id = 6`)
	e.exec(`UPDATE likes SET user_id = 200 WHERE product_id = 7`)
	e.exec(`DELETE FROM likes WHERE product_id IN (8, 9) OR user_id = 100 AND product_id = 2`)
	waitLikes(t, e, fake)
	require.Len(t, fake.Rows("likes"), 39)
	require.NoError(t, daemon.stop())
}

// TestFeishuMissingConstraintStops: without the unique constraint the key
// needs, the first upsert stops the daemon with the table, key and fix, and
// no row goes to the dead letters.
func TestFeishuMissingConstraintStops(t *testing.T) {
	e := newEnv(t, likesSchema)
	fake := likesFake(t, false)
	daemon := e.start(e.configWithTargets(larkTarget(fake), likesMapping))
	var err error
	select {
	case err = <-daemon.done:
		daemon.done <- err // for the cleanup's stop
	case <-time.After(60 * time.Second):
		t.Fatal("the daemon did not stop within 60s")
	}
	require.Error(t, err)
	t.Log(err)
	for _, want := range []string{`table "likes"`, "(user_id, product_id)", "create a unique constraint on (user_id, product_id) in the Feishu workspace", "change the mapping's key"} {
		require.Contains(t, err.Error(), want)
	}
	data, readErr := os.ReadFile(filepath.Join(e.stateDir, state.DeadLetterFile))
	if readErr == nil {
		require.Empty(t, strings.TrimSpace(string(data)), "dead letters were written")
	} else {
		require.ErrorIs(t, readErr, os.ErrNotExist)
	}
	require.Empty(t, fake.Rows("likes"))
}

const generatedSchema = `
CREATE TABLE gen (
  id int PRIMARY KEY,
  a int,
  g int GENERATED ALWAYS AS (a * 2) STORED
);
INSERT INTO gen (id, a) VALUES (1, 10), (2, NULL);
`

// TestGeneratedColumns: PostgreSQL does not publish generated columns, so
// the default mapping leaves them out (a check warning says why), in the
// snapshot and in the stream alike, and an explicit mapping of one is
// refused with that reason.
func TestGeneratedColumns(t *testing.T) {
	e := newEnv(t, generatedSchema)
	cfg := e.config(`
  - source: public.gen
    target: mem
    table: gen
`)
	items := app.Check(context.Background(), cfg, app.Deps{Logger: quietLogger(), Writers: writers(e)})
	table := checkItem(t, items, "table public.gen")
	require.Equal(t, app.CheckWarn, table.Status, table.Detail)
	require.Contains(t, table.Detail, "generated column(s) g are left out")
	require.Contains(t, table.Detail, "does not publish")
	require.Contains(t, table.Detail, "compute them on the target")

	explicit := e.config(`
  - source: public.gen
    target: mem
    table: gen
    columns: {id: id, g: g}
`)
	items = app.Check(context.Background(), explicit, app.Deps{Logger: quietLogger(), Writers: writers(e)})
	table = checkItem(t, items, "table public.gen")
	require.Equal(t, app.CheckFail, table.Status)
	require.Contains(t, table.Detail, "column g is a generated column, which PostgreSQL does not publish")
	require.NotContains(t, table.Detail, "not in the table")
	err := app.Run(context.Background(), explicit, app.Deps{Logger: quietLogger(), Writers: writers(e)})
	require.ErrorContains(t, err, "column g is a generated column")

	keyed := e.config(`
  - source: public.gen
    target: mem
    table: gen
    key: [g]
    on_delete: ignore
`)
	table = checkItem(t, app.Check(context.Background(), keyed, app.Deps{Logger: quietLogger(), Writers: writers(e)}), "table public.gen")
	require.Equal(t, app.CheckFail, table.Status)
	require.Contains(t, table.Detail, "key column g is a generated column, which PostgreSQL does not publish")

	logs := &testkit.LockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, cfg, app.Deps{Logger: slog.New(slog.NewTextHandler(logs, nil)), Writers: writers(e)})
	}()
	testkit.Eventually(t, 30*time.Second, "the snapshot", func() bool { return e.mem.Len("gen") == 2 })
	e.exec(`INSERT INTO gen (id, a) VALUES (3, 7)`)
	e.exec(`UPDATE gen SET a = 11 WHERE id = 1`)
	testkit.Eventually(t, 30*time.Second, "the stream", func() bool {
		rows := targetRows(t, e.mem, "gen")
		return len(rows) == 3 && rows["1"]["a"] == json.Number("11")
	})
	for k, row := range targetRows(t, e.mem, "gen") {
		require.NotContains(t, row, "g", "row %s", k)
		require.Contains(t, row, "a", "row %s", k)
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("the daemon did not stop within 60s")
	}
	require.Equal(t, 1, strings.Count(logs.String(), "generated column(s) g are left out"), logs.String())
}
