package feishu

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// TestReadRowsPagesUnderTheRateLimit reads a table bigger than a page from
// a fake that enforces 10 requests/s, 500-row pages, items as a string and
// the token: every row comes back once, in pages, and nothing is throttled.
func TestReadRowsPagesUnderTheRateLimit(t *testing.T) {
	e := newEnv(t, feishufake.Options{RequestsPerSecond: 10})
	e.cfg.RequestsPerSecond = 10
	e.addCustomers()
	const n = 1201
	for i := 1; i <= n; i++ {
		require.NoError(t, e.fake.InsertRow("customers", map[string]any{"id": json.Number(strconv.Itoa(i)), "name": "c" + strconv.Itoa(i)}))
	}
	w := e.writer()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seen := map[string]int{}
	require.NoError(t, w.ReadRows(ctx, "customers", func(row map[string]any) error {
		seen[toString(row["id"])]++
		require.Equal(t, "c"+toString(row["id"]), row["name"])
		return nil
	}))
	require.Len(t, seen, n)
	for id, c := range seen {
		require.Equal(t, 1, c, "row %s", id)
	}
	reads := e.requests(http.MethodGet, "/records")
	require.Len(t, reads, 3)
	for _, r := range e.fake.Requests() {
		require.Equal(t, http.StatusOK, r.Status, "%+v", r)
	}

	var got []string
	keys := []replicator.Record{deleteRec(idField(5)), deleteRec(idField(700)), deleteRec(idField(99999))}
	require.NoError(t, w.ReadKeys(ctx, customers, keys, func(row map[string]any) error {
		got = append(got, toString(row["id"]))
		return nil
	}))
	require.ElementsMatch(t, []string{"5", "700"}, got)
}

// TestReadRowsRefusedTable: a table the API refuses is an error naming it.
func TestReadRowsRefusedTable(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	err := e.writer().ReadRows(context.Background(), "nope", func(map[string]any) error { return nil })
	require.ErrorContains(t, err, "reading table nope")
}

func TestRenderAsUpsertSends(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	rec := upsertRec(idField(1), field("amount", val(replicator.KindNumeric, "12345678901234567890.50")),
		field("created", val(replicator.KindTimestampTZ, "2024-01-02T03:04:05.123456+00:00")),
		field("payload", val(replicator.KindJSON, `{"a":[1,2]}`)), field("note", replicator.Null))
	got, err := e.writer().Render(customers, &rec)
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"id": json.Number("1"), "amount": json.Number("12345678901234567890.50"),
		"created": "2024-01-02T03:04:05.123456+00:00",
		"payload": map[string]any{"a": []any{json.Number("1"), json.Number("2")}}, "note": nil,
	}, got)
}
