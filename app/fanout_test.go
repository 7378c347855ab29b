package app_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

// One source table fanned out to a Feishu table and a GPTBots table, each
// with its own columns and delete policy: one publication entry, one
// snapshot, every change to both, a TRUNCATE emptying both
// (on_truncate: empty), and the acknowledgement waiting for both.
func TestFanOutToBothTargets(t *testing.T) {
	e := newEnv(t, `CREATE TABLE people (id bigint PRIMARY KEY, name text, email text, note text);
INSERT INTO people VALUES (1, 'ann', 'a@x', 'first'), (2, 'bob', 'b@x', 'second');`)
	lark, larkYAML := larkFake(t, "people", []feishufake.Column{
		{Name: "id", DataType: "bigint", IsPrimaryKey: true},
		{Name: "name", DataType: "text", AllowNull: true},
		{Name: "email", DataType: "text", AllowNull: true},
	})
	bots := gptbotsfake.New(gptbotsfake.Options{APIKey: "gb-key", RequestsPerSecond: -1})
	t.Cleanup(bots.Close)
	require.NoError(t, bots.AddTable("tbl_people", []gptbotsfake.Field{
		{Name: "id", Type: gptbotsfake.TypeInt, Unique: true},
		{Name: "summary", Type: gptbotsfake.TypeText},
	}))
	targets := larkYAML + fmt.Sprintf(`
  bots:
    type: gptbots
    base_url: %s
    api_key: gb-key
    requests_per_second: 1000
`, bots.URL())
	cfg := e.configWithTargets(targets, `
  - source: people
    target: lark
    table: people
    columns: {id: id, name: name, email: email}
    on_truncate: empty
  - source: people
    target: bots
    table: tbl_people
    columns: {id: id, note: summary}
    on_delete: ignore
    on_truncate: empty
`)
	larkRows := func() map[string]map[string]string { return fakeRowsByID(t, lark, "people") }
	botsRows := func() map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, r := range bots.Rows("tbl_people") {
			out[fmt.Sprint(r["id"])] = r
		}
		return out
	}
	daemon := e.startStreaming(cfg)
	testkit.Eventually(t, 30*time.Second, "the snapshot in both targets", func() bool { return len(larkRows()) == 2 && len(botsRows()) == 2 })
	require.Equal(t, `"ann"`, larkRows()["1"]["name"])
	require.Equal(t, "first", botsRows()["1"]["summary"])

	e.exec(`INSERT INTO people VALUES (3, 'cy', 'c@x', 'third')`)
	e.exec(`UPDATE people SET name = 'anna', note = 'first!' WHERE id = 1`)
	e.exec(`DELETE FROM people WHERE id = 2`)
	committed := e.currentLSN()
	testkit.Eventually(t, 30*time.Second, "the changes in both targets", func() bool {
		l, b := larkRows(), botsRows()
		return len(l) == 2 && l["1"]["name"] == `"anna"` && l["3"] != nil &&
			len(b) == 3 && b["1"]["summary"] == "first!" && b["3"] != nil
	})
	require.NotContains(t, botsRows()["1"], "name", "each route writes only its own columns")
	testkit.Eventually(t, 30*time.Second, "the acknowledgement", func() bool { return e.lsnAtLeast(e.slotFlushed(), committed) })

	e.exec(`BEGIN; TRUNCATE people; INSERT INTO people VALUES (4, 'dee', 'd@x', 'fourth'); COMMIT;`)
	testkit.Eventually(t, 60*time.Second, "both targets emptied, then the new row", func() bool {
		l, b := larkRows(), botsRows()
		return len(l) == 1 && l["4"] != nil && len(b) == 1 && b["4"] != nil
	})
	require.NoError(t, daemon.stop())

	var published int
	require.NoError(t, e.db.QueryRow(t.Context(), `SELECT count(*) FROM pg_publication_tables WHERE pubname = $1`, "pub_"+e.name).Scan(&published))
	require.Equal(t, 1, published, "one publication entry for the fanned-out table")
}
