// Package e2e drives the whole daemon against a real PostgreSQL and the
// fake Feishu server: the in-process app.Run and the built binary, under
// injected faults, restarts and SIGKILL.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/internal/pgtest"
	"github.com/replicator-cdc/replicator/state"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// cluster is shared by every test of the package: starting PostgreSQL
// costs seconds, a database of one's own costs milliseconds.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	c, err := pgtest.Launch(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "start PostgreSQL:", err)
		os.Exit(1)
	}
	cluster = c
	code := m.Run()
	c.Stop()
	os.Exit(code)
}

// itemsSchema has one column of each type the design's encoding table
// promises to keep exact. big is stored out of line and uncompressed, so
// that an update leaving it alone sends it as "unchanged" ('u').
//
// The database's TimeZone and DateStyle are set to what a Feishu user in
// China might well have: the daemon must not depend on them, because it
// fixes its own session settings.
const itemsSchema = `
CREATE TABLE items (
  id bigint PRIMARY KEY,
  name text,
  qty integer,
  price numeric,
  flag boolean,
  at timestamptz,
  doc jsonb,
  big text
);
ALTER TABLE items ALTER COLUMN big SET STORAGE EXTERNAL;
`

// itemsColumns is the Feishu table the items mirror into, typed like the
// source so that the fake coerces values the way PostgreSQL would.
var itemsColumns = []feishufake.Column{
	{Name: "id", DataType: "bigint", IsPrimaryKey: true},
	{Name: "name", DataType: "text", AllowNull: true},
	{Name: "qty", DataType: "integer", AllowNull: true},
	{Name: "price", DataType: "numeric", AllowNull: true},
	{Name: "flag", DataType: "boolean", AllowNull: true},
	{Name: "at", DataType: "timestamptz", AllowNull: true},
	{Name: "doc", DataType: "jsonb", AllowNull: true},
	{Name: "big", DataType: "text", AllowNull: true},
}

// colKind says how two values of a column are compared.
type colKind int

const (
	kindExact   colKind = iota // integers and text: the same JSON value
	kindNumeric                // the same number, however many trailing zeros
	kindInstant                // the same instant, whatever the offset
	kindJSON                   // the same JSON document, numbers by value
)

var itemsKinds = map[string]colKind{
	"id": kindExact, "name": kindExact, "qty": kindExact, "price": kindNumeric,
	"flag": kindExact, "at": kindInstant, "doc": kindJSON, "big": kindExact,
}

// database is one test's source database.
type database struct {
	dsn string
	// name is unique in the cluster, and so also names the slot and the
	// publication: slots are per cluster, not per database.
	name string
	db   *pgx.Conn
}

// newDatabase creates the test's database with the items table.
func newDatabase(t *testing.T) database {
	t.Helper()
	ctx := context.Background()
	dsn := cluster.NewDatabase(t)
	db, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close(context.Background()) })
	var name string
	require.NoError(t, db.QueryRow(ctx, "SELECT current_database()").Scan(&name))
	_, err = db.Exec(ctx, itemsSchema+fmt.Sprintf(`
ALTER DATABASE %[1]s SET TimeZone TO 'Asia/Shanghai';
ALTER DATABASE %[1]s SET DateStyle TO 'SQL, DMY';`, pgx.Identifier{name}.Sanitize()))
	require.NoError(t, err)
	return database{dsn: dsn, name: name, db: db}
}

// newFake starts a fake Feishu workspace holding the items table, at the
// documented rate limit of 10 requests per second.
func newFake(t *testing.T, opts feishufake.Options) *feishufake.Server {
	t.Helper()
	fake := feishufake.New(opts)
	t.Cleanup(fake.Close)
	require.NoError(t, fake.AddTable("items", itemsColumns))
	return fake
}

// configYAML is the daemon's configuration. The token comes from the
// environment variable tokenVar, as the documentation tells users to keep
// secrets. http.listen asks for any free port, so that two daemons (or a
// colleague's) never fight over the default one. batchRows below Feishu's
// 500 makes the snapshot take several requests, and so seconds, at 10
// requests per second: long enough to be interrupted.
func configYAML(src database, stateDir, fakeURL, tokenVar string, batchRows int, shutdown time.Duration) string {
	return fmt.Sprintf(`
source:
  dsn: %q
  slot: %s
  publication: %s
  status_interval: 1s
state:
  dir: %q
pipeline:
  flush_interval: 200ms
  batch_rows: %d
  snapshot_chunk_rows: 500
  shutdown_timeout: %s
log:
  level: info
  format: json
http:
  listen: 127.0.0.1:0
targets:
  lark:
    type: feishu
    base_url: %s
    workspace_id: workspace_fake
    user_access_token: ${%s}
    requests_per_second: 10
    request_timeout: 2s
mappings:
  - source: public.items
    target: lark
    table: items
`, src.dsn, src.name, src.name, stateDir, batchRows, shutdown, fakeURL, tokenVar)
}

// seedRows fills items with n rows through PostgreSQL alone, with NULLs,
// large values out of line on every 20th row, and a few rows at the edges
// of each type.
func seedRows(t *testing.T, db *pgx.Conn, n int) {
	t.Helper()
	_, err := db.Exec(context.Background(), `
INSERT INTO items
SELECT g,
       CASE WHEN g % 17 = 0 THEN NULL ELSE 'name ' || g END,
       CASE WHEN g % 13 = 0 THEN NULL ELSE g % 1000 - 500 END,
       CASE WHEN g % 11 = 0 THEN NULL ELSE (g * 1.25)::numeric END,
       CASE WHEN g % 7 = 0 THEN NULL ELSE g % 2 = 0 END,
       CASE WHEN g % 19 = 0 THEN NULL ELSE '2024-01-02 03:04:05.123456+00'::timestamptz + g * interval '1 second 7 microseconds' END,
       CASE WHEN g % 23 = 0 THEN NULL ELSE jsonb_build_object('g', g, 'half', g / 2.0, 'tags', jsonb_build_array('a', g)) END,
       CASE WHEN g % 20 = 0 THEN repeat(lpad(g::text, 8, '0'), 1000) END
FROM generate_series(1, $1::int) g`, n)
	require.NoError(t, err)
	// Keys beyond 2^53 lose digits in a float64: the filter of a delete
	// and the conflict key of an upsert must carry them exactly.
	_, err = db.Exec(context.Background(), `
INSERT INTO items VALUES
 (9007199254740993, 'O''Brien, "quoted" \ back', 2147483647, 12345678901234567890.123456789, true,
  '1999-12-31 23:59:59.999999+14', '{"n": 12345678901234567890, "f": 1.5e300, "s": "x\"y", "a": [1, 2.50, null, true], "k": {"多": "语言"}}', repeat('x', 5000)),
 (9223372036854775807, '', -2147483648, 'NaN', false, 'infinity', '[]', NULL),
 (9223372036854775806, 'null', 0, '-0.000001', NULL, '1970-01-01 00:00:00+00', '"just a string"', NULL)`)
	require.NoError(t, err)
}

// workload makes random changes to items: inserts, updates (some leaving
// the out-of-line value unchanged), deletes, NULLs, key changes and small
// multi-statement transactions. It is not safe for concurrent use.
type workload struct {
	db     *pgx.Conn
	rng    *rand.Rand
	nextID int64
	runs   int
}

func newWorkload(db *pgx.Conn, seed uint64, firstID int64) *workload {
	return &workload{db: db, rng: rand.New(rand.NewPCG(seed, seed+1)), nextID: firstID}
}

var (
	names = []string{"", "plain", `O'Brien, "quoted" \ back`, "多语言 ✓ 🚀", "comma,separated.dots:(parens)", "null", "line\nbreak\ttab", "  padded  "}
	// Prices are numeric text: exact digits, special values, exponents
	// that numeric expands.
	prices = []string{"0", "-0.000001", "1.50", "12345678901234567890.123456789", "NaN", "Infinity", "-Infinity", "1e-20", "99999999999999999999999999999999999.5"}
	docs   = []string{`{}`, `[]`, `"text"`, `0`, `{"n": 98765432109876543210, "x": [1.0, -2e-3, "s", false]}`, `{"nested": {"deep": {"k": "多"}}, "empty": ""}`}
)

// bigValue is longer than the TOAST threshold, so it is stored out of line.
func bigValue(seed int) string {
	return strings.Repeat(fmt.Sprintf("%08d", seed), 1000)
}

func (w *workload) pick(n int) bool { return w.rng.IntN(n) == 0 }

func (w *workload) name() any {
	if w.pick(6) {
		return nil
	}
	if w.pick(2) {
		return names[w.rng.IntN(len(names))]
	}
	return fmt.Sprintf("name %d", w.rng.IntN(1_000_000))
}

func (w *workload) qty() any {
	switch w.rng.IntN(8) {
	case 0:
		return nil
	case 1:
		return int32(2147483647)
	case 2:
		return int32(-2147483648)
	}
	return int32(w.rng.IntN(2000) - 1000)
}

func (w *workload) price() any {
	switch w.rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return prices[w.rng.IntN(len(prices))]
	}
	return fmt.Sprintf("%d.%06d", w.rng.IntN(1_000_000)-500_000, w.rng.IntN(1_000_000))
}

func (w *workload) flag() any {
	switch w.rng.IntN(3) {
	case 0:
		return nil
	case 1:
		return true
	}
	return false
}

// at is timestamptz text at microsecond precision in a random offset, so
// that only a comparison of instants sees the values as equal.
func (w *workload) at() any {
	switch w.rng.IntN(10) {
	case 0:
		return nil
	case 1:
		return "infinity"
	}
	sec := w.rng.Int64N(4_000_000_000) // 1970 to 2096
	zone := time.FixedZone("", (w.rng.IntN(27)-12)*3600+w.rng.IntN(2)*1800)
	return time.Unix(sec, int64(w.rng.IntN(1_000_000))*1000).In(zone).Format("2006-01-02 15:04:05.999999-07:00")
}

func (w *workload) doc() any {
	switch w.rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return docs[w.rng.IntN(len(docs))]
	}
	return fmt.Sprintf(`{"r": %d, "s": %q, "a": [%d, %d.5]}`, w.rng.IntN(1000), fmt.Sprint("v", w.rng.IntN(100)), w.rng.IntN(10), w.rng.IntN(10))
}

func (w *workload) big() any {
	if w.pick(3) {
		return bigValue(w.rng.IntN(1_000_000))
	}
	return nil
}

// someID is an id that may or may not still exist: changes to a missing
// row change nothing, which is fine.
func (w *workload) someID() int64 { return 1 + w.rng.Int64N(w.nextID-1) }

func (w *workload) freshID() int64 {
	id := w.nextID
	w.nextID++
	return id
}

const insertSQL = `INSERT INTO items (id, name, qty, price, flag, at, doc, big)
VALUES ($1, $2, $3, $4::text::numeric, $5, $6::text::timestamptz, $7::text::jsonb, $8)`

// toastedRow selects the $1-th row holding an out-of-line value.
const toastedRow = `(SELECT id FROM items WHERE big IS NOT NULL ORDER BY id OFFSET $1 LIMIT 1)`

// step runs one random change (one transaction).
func (w *workload) step(ctx context.Context) error {
	w.runs++
	var err error
	switch w.rng.IntN(14) {
	case 0, 1:
		_, err = w.db.Exec(ctx, insertSQL, w.freshID(), w.name(), w.qty(), w.price(), w.flag(), w.at(), w.doc(), w.big())
	case 2, 3: // leaves big unchanged: it arrives as 'u' and must not be cleared
		_, err = w.db.Exec(ctx, `UPDATE items SET qty = coalesce(qty, 0) % 1000 + 1, name = $2 WHERE id = `+toastedRow, w.rng.IntN(40), w.name())
	case 4:
		_, err = w.db.Exec(ctx, `UPDATE items SET price = $2::text::numeric, at = $3::text::timestamptz, flag = $4 WHERE id = $1`, w.someID(), w.price(), w.at(), w.flag())
	case 5:
		_, err = w.db.Exec(ctx, `UPDATE items SET name = NULL, qty = NULL, price = NULL, flag = NULL, at = NULL, doc = NULL WHERE id = $1`, w.someID())
	case 6:
		_, err = w.db.Exec(ctx, `DELETE FROM items WHERE id = $1`, w.someID())
	case 7: // a key change without an out-of-line value
		_, err = w.db.Exec(ctx, `UPDATE items SET id = $2, qty = 7 WHERE id = $1`, w.someID(), w.freshID())
	case 8: // a key change whose new row must be completed from the source
		_, err = w.db.Exec(ctx, `UPDATE items SET id = $2 WHERE id = `+toastedRow, w.rng.IntN(40), w.freshID())
	case 9:
		_, err = w.db.Exec(ctx, `UPDATE items SET big = $2 WHERE id = $1`, w.someID(), w.big())
	case 10:
		_, err = w.db.Exec(ctx, `UPDATE items SET doc = jsonb_set(coalesce(doc, '{}'), '{n}', to_jsonb($2::bigint)) WHERE id = $1 AND jsonb_typeof(doc) = 'object'`, w.someID(), w.rng.Int64())
	case 11: // delete then insert the same key, and update another row twice, in one transaction
		a, b := w.someID(), w.someID()
		err = pgx.BeginFunc(ctx, w.db, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `DELETE FROM items WHERE id = $1`, a); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, insertSQL, a, w.name(), w.qty(), w.price(), w.flag(), w.at(), w.doc(), w.big()); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE items SET qty = 1 WHERE id = $1`, b); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE items SET name = $2 WHERE id = $1`, b, w.name())
			return err
		})
	case 12: // a key moved away and back in one transaction: the row at the
		// intermediate key is gone when the change is decoded
		from, via := w.someID(), w.freshID()
		err = pgx.BeginFunc(ctx, w.db, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE items SET id = $2 WHERE id = $1`, from, via); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE items SET id = $1, flag = NOT coalesce(flag, false) WHERE id = $2`, from, via)
			return err
		})
	case 13: // several rows in one statement
		lo := w.someID()
		_, err = w.db.Exec(ctx, `UPDATE items SET qty = coalesce(qty, 0) % 1000 - 1 WHERE id BETWEEN $1 AND $1 + 20`, lo)
	}
	if err != nil {
		return fmt.Errorf("workload step %d: %w", w.runs, err)
	}
	return nil
}

// run makes n changes, pausing up to maxPause between them so that they
// spread over several batches.
func (w *workload) run(ctx context.Context, n int, maxPause time.Duration) error {
	for range n {
		if err := w.step(ctx); err != nil {
			return err
		}
		if maxPause > 0 {
			time.Sleep(time.Duration(w.rng.Int64N(int64(maxPause))))
		}
	}
	return nil
}

// sourceRows reads items as PostgreSQL's own JSON rendering of each row,
// keyed by id: independent of the daemon's decoding and encoding.
func sourceRows(ctx context.Context, db *pgx.Conn) (map[string]map[string]any, error) {
	return jsonRows(ctx, db, `SELECT id::text, to_jsonb(t)::text FROM items t`)
}

// jsonRows reads a query of (id, a JSON object as text) into rows keyed by
// id.
func jsonRows(ctx context.Context, db *pgx.Conn, query string) (map[string]map[string]any, error) {
	rows, err := db.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[string]any{}
	for rows.Next() {
		var id, text string
		if err := rows.Scan(&id, &text); err != nil {
			return nil, err
		}
		v, err := decodeJSON(text)
		if err != nil {
			return nil, err
		}
		out[id] = v.(map[string]any)
	}
	return out, rows.Err()
}

// fakeRows reads the fake's items table keyed by id, without its system
// column _id.
func fakeRows(fake *feishufake.Server) (map[string]map[string]any, []string) {
	out := map[string]map[string]any{}
	var problems []string
	for _, r := range fake.Rows("items") {
		id := fmt.Sprint(r["id"])
		if _, dup := out[id]; dup {
			problems = append(problems, "two target rows with id "+id)
		}
		delete(r, "_id")
		out[id] = r
	}
	return out, problems
}

func decodeJSON(s string) (any, error) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode %q: %w", s, err)
	}
	return v, nil
}

// diffRows lists how got differs from want, column by column and by each
// column's kind; empty means the mirror is exact.
func diffRows(want, got map[string]map[string]any, kinds map[string]colKind) []string {
	var problems []string
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			problems = append(problems, "missing id "+id)
			continue
		}
		for col, kind := range kinds {
			wv, wok := w[col]
			gv, gok := g[col]
			if !wok || !gok {
				problems = append(problems, fmt.Sprintf("id %s: column %s present in source %t, target %t", id, col, wok, gok))
				continue
			}
			if !sameValue(kind, wv, gv) {
				problems = append(problems, fmt.Sprintf("id %s: column %s: source %s, target %s", id, col, abbreviate(wv), abbreviate(gv)))
			}
		}
		for col := range g {
			if _, ok := kinds[col]; !ok {
				problems = append(problems, fmt.Sprintf("id %s: unexpected target column %s", id, col))
			}
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			problems = append(problems, "stale id "+id)
		}
	}
	sort.Strings(problems)
	return problems
}

func sameValue(kind colKind, want, got any) bool {
	if want == nil || got == nil {
		return want == nil && got == nil
	}
	switch kind {
	case kindNumeric:
		return sameNumber(want, got)
	case kindInstant:
		ws, wok := want.(string)
		gs, gok := got.(string)
		if !wok || !gok {
			return false
		}
		wt, werr := time.Parse(time.RFC3339Nano, ws)
		gt, gerr := time.Parse(time.RFC3339Nano, gs)
		if werr != nil || gerr != nil {
			// infinity and -infinity have no instant: they must match as text.
			return ws == gs
		}
		return wt.Equal(gt)
	case kindJSON:
		return sameJSON(want, got)
	}
	return reflect.DeepEqual(want, got)
}

// sameNumber compares JSON numbers by value with arbitrary precision;
// special values (NaN, Infinity) travel as strings and compare as text.
func sameNumber(want, got any) bool {
	wn, wok := want.(json.Number)
	gn, gok := got.(json.Number)
	if !wok || !gok {
		return reflect.DeepEqual(want, got)
	}
	wr, ok1 := new(big.Rat).SetString(wn.String())
	gr, ok2 := new(big.Rat).SetString(gn.String())
	return ok1 && ok2 && wr.Cmp(gr) == 0
}

func sameJSON(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok || !sameJSON(wv, gv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !sameJSON(w[i], g[i]) {
				return false
			}
		}
		return true
	case json.Number:
		return sameNumber(want, got)
	}
	return reflect.DeepEqual(want, got)
}

func abbreviate(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 120 {
		return fmt.Sprintf("%s… (%d bytes)", b[:120], len(b))
	}
	return string(b)
}

// mirrorDiff compares the source with the fake once.
func mirrorDiff(ctx context.Context, db *pgx.Conn, fake *feishufake.Server) ([]string, int, error) {
	want, err := sourceRows(ctx, db)
	if err != nil {
		return nil, 0, err
	}
	got, problems := fakeRows(fake)
	return append(problems, diffRows(want, got, itemsKinds)...), len(want), nil
}

// waitMirror polls until the fake's items equal the source's, at most
// timeout, or until stop reports a reason to give up early (the daemon
// died). It returns how long it took.
func waitMirror(t *testing.T, db *pgx.Conn, fake *feishufake.Server, timeout time.Duration, stop func() error) time.Duration {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	var problems []string
	rows := 0
	for time.Since(start) < timeout {
		var err error
		problems, rows, err = mirrorDiff(ctx, db, fake)
		require.NoError(t, err)
		if len(problems) == 0 {
			t.Logf("mirror equals the source (%d rows) after %s", rows, time.Since(start).Round(time.Millisecond))
			return time.Since(start)
		}
		if stop != nil {
			if err := stop(); err != nil {
				t.Fatalf("the daemon stopped while the mirror still differed in %d ways (e.g. %s): %v", len(problems), strings.Join(problems[:min(3, len(problems))], "; "), err)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("the mirror did not equal the source within %s: %d differences (source %d rows), e.g.\n  %s",
		timeout, len(problems), rows, strings.Join(problems[:min(10, len(problems))], "\n  "))
	return 0
}

// recordCalls are the calls of the records API, the one Feishu documents
// its 10 requests per second for and the fake's limiter counts; schema
// reads are another API with a limit of their own.
func recordCalls(reqs []feishufake.Request) []feishufake.Request {
	var out []feishufake.Request
	for _, r := range reqs {
		if strings.HasSuffix(r.Path, "/records") {
			out = append(out, r)
		}
	}
	return out
}

// writeRequests are the record writes the fake saw.
func writeRequests(reqs []feishufake.Request) []feishufake.Request {
	var out []feishufake.Request
	for _, r := range reqs {
		if strings.HasSuffix(r.Path, "/records") && r.Method != "GET" {
			out = append(out, r)
		}
	}
	return out
}

// busiestWindow returns the requests of the fullest window of length d
// (half-open, (t-d, t], as MaxPerWindow measures), for failure messages.
func busiestWindow(reqs []feishufake.Request, d time.Duration) string {
	sorted := slices.SortedFunc(slices.Values(reqs), func(a, b feishufake.Request) int { return a.Time.Compare(b.Time) })
	bestLo, bestHi, lo := 0, -1, 0
	for hi := range sorted {
		for !sorted[lo].Time.After(sorted[hi].Time.Add(-d)) {
			lo++
		}
		if hi-lo > bestHi-bestLo {
			bestLo, bestHi = lo, hi
		}
	}
	var b strings.Builder
	for i := bestLo; i <= bestHi; i++ {
		r := sorted[i]
		fmt.Fprintf(&b, "\n  %s %-6s %s rows=%d status=%d fault=%s", r.Time.Format("15:04:05.000000"), r.Method, r.Path, r.Rows, r.Status, r.Fault)
	}
	return b.String()
}

// faultCounts counts requests by the fault they met.
func faultCounts(reqs []feishufake.Request) map[feishufake.Fault]int {
	out := map[feishufake.Fault]int{}
	for _, r := range reqs {
		out[r.Fault]++
	}
	return out
}

// unsolicitedThrottles are 429 answers the fake gave on its own: the
// client outran the rate limit.
func unsolicitedThrottles(reqs []feishufake.Request) []feishufake.Request {
	var out []feishufake.Request
	for _, r := range reqs {
		if r.Status == 429 && r.Fault == feishufake.FaultNone {
			out = append(out, r)
		}
	}
	return out
}

// requireNoDeadLetters fails when the daemon gave up on any record: every
// value of the workload is one Feishu accepts.
func requireNoDeadLetters(t *testing.T, stateDir string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(stateDir, state.DeadLetterFile))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	require.NoError(t, err)
	require.Empty(t, strings.TrimSpace(string(data)), "dead letters were written")
}

// slotCatchesUp waits until the slot's confirmed position reaches the
// server's current WAL position: everything written is acknowledged.
func slotCatchesUp(t *testing.T, db *pgx.Conn, slot string, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	var target string
	require.NoError(t, db.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&target))
	deadline := time.Now().Add(timeout)
	var flushed *string
	for time.Now().Before(deadline) {
		var ok *bool
		err := db.QueryRow(ctx, `SELECT confirmed_flush_lsn::text, confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1`, slot, target).Scan(&flushed, &ok)
		require.NoError(t, err)
		if ok != nil && *ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("slot %s confirmed %v, not yet %s, after %s", slot, deref(flushed), target, timeout)
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

// lockedBuffer collects the daemon's log from its goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// logSummary counts log lines by level and message, the shape of a run at
// a glance.
func logSummary(log string) string {
	counts := map[string]int{}
	for _, line := range strings.Split(log, "\n") {
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &entry) != nil || entry.Msg == "" {
			continue
		}
		counts[entry.Level+" "+entry.Msg]++
	}
	keys := slices.Sorted(maps.Keys(counts))
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %5d× %s", counts[k], k)
	}
	return b.String()
}

// tail keeps the end of a log, where the reason for a failure is.
func tail(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	s = s[len(s)-limit:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "…\n" + s
}
