package gptbots_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/gptbots"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

// TestReadRowsPagesUnderTheRateLimit reads a table bigger than a page from
// a fake that enforces 5 calls/s and pages of at most 100: every row comes
// back once, and nothing is throttled.
func TestReadRowsPagesUnderTheRateLimit(t *testing.T) {
	h := newHarness(t, func(o *gptbotsfake.Options, c *gptbots.Config) {
		o.RequestsPerSecond = 5
		c.RequestsPerSecond = 5
	})
	const n = 250
	for i := 1; i <= n; i++ {
		require.NoError(t, h.fake.InsertRow(table, map[string]any{"id": strconv.Itoa(i), "n": json.Number(strconv.Itoa(i))}))
	}
	h.prepare(t)
	seen := map[string]int{}
	require.NoError(t, h.w.ReadRows(ctx(t), table, func(row map[string]any) error {
		seen[row["id"].(string)]++
		require.Equal(t, json.Number(row["id"].(string)), row["n"])
		return nil
	}))
	require.Len(t, seen, n)
	for id, c := range seen {
		require.Equal(t, 1, c, "row %s", id)
	}
	require.Len(t, h.calls(gptbotsfake.PagePath), 1+3) // Prepare's read, then three pages
	for _, c := range h.fake.Requests() {
		require.Equal(t, http.StatusOK, c.Status, "%+v", c)
	}

	var got []string
	keys := []replicator.Record{{Key: []replicator.Field{field("id", text("7"))}}, {Key: []replicator.Field{field("id", text("249"))}}, {Key: []replicator.Field{field("id", text("nope"))}}}
	require.NoError(t, h.w.ReadKeys(ctx(t), spec, keys, func(row map[string]any) error {
		got = append(got, row["id"].(string))
		return nil
	}))
	require.ElementsMatch(t, []string{"7", "249"}, got)
}

// TestRenderAsUpdateSends: values come out as the update sends them, a
// DATETIME without a zone, a whole numeric as an INT.
func TestRenderAsUpdateSends(t *testing.T) {
	h := newHarness(t, nil)
	h.prepare(t)
	rec := replicator.Record{Key: []replicator.Field{field("id", text("1"))}, Fields: []replicator.Field{
		field("id", text("1")), field("n", val(replicator.KindNumeric, "3.0")),
		field("at", val(replicator.KindTimestampTZ, "2024-01-02T03:04:05.999+00:00")),
		field("ok", val(replicator.KindBool, "true")), field("name", replicator.Null),
	}}
	got, err := h.w.Render(spec, &rec)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"id": "1", "n": json.Number("3"), "at": "2024-01-02 03:04:05", "ok": true, "name": nil}, got)
}
