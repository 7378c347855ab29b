package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/state"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

// Everything in this file is prefixed gb, so that it cannot clash with the
// Feishu end-to-end test's helpers in the same package.

const (
	gbTableID = "tbl_gb_items"
	gbAPIKey  = "gb-e2e-api-key-0042"
	// gbKeyVar carries the API key into the configuration, the way the
	// documentation tells users to keep secrets.
	gbKeyVar = "E2E_GPTBOTS_API_KEY"
	// gbZone is where DATETIME fields are written; not UTC, so that a
	// writer ignoring the setting is caught, and with DST in 1986-1991.
	gbZone = "Asia/Shanghai"
	// gbPoison starts every name the fake refuses.
	gbPoison       = "reject-"
	gbRejectReason = "name refused by the e2e fake"
	gbShutdown     = 30 * time.Second
	// gbMirrorTimeout bounds the wait for convergence; it takes seconds.
	gbMirrorTimeout = 3 * time.Minute
)

// gbSchema has a column of each type the brief names. note is stored out
// of line and uncompressed, so that an update leaving it alone sends it as
// "unchanged" ('u'), which must leave the GPTBots field as it is.
const gbSchema = `
CREATE TABLE gb_items (
  id bigint PRIMARY KEY,
  name text,
  qty integer,
  price numeric,
  ratio double precision,
  flag boolean,
  at timestamptz,
  doc jsonb,
  tags text[],
  note text
);
ALTER TABLE gb_items ALTER COLUMN note SET STORAGE EXTERNAL;
`

// gbFields is the GPTBots table: every field type, the key unique.
var gbFields = []gptbotsfake.Field{
	{Name: "id", Type: gptbotsfake.TypeInt, Unique: true},
	{Name: "name", Type: gptbotsfake.TypeText},
	{Name: "qty", Type: gptbotsfake.TypeInt},
	{Name: "price", Type: gptbotsfake.TypeFloat},
	{Name: "ratio", Type: gptbotsfake.TypeFloat},
	{Name: "flag", Type: gptbotsfake.TypeBoolean},
	{Name: "at", Type: gptbotsfake.TypeDateTime},
	{Name: "doc", Type: gptbotsfake.TypeText},
	{Name: "tags", Type: gptbotsfake.TypeText},
	{Name: "note", Type: gptbotsfake.TypeText},
}

// gbCompare says how a source value and a GPTBots value are compared.
type gbCompare int

const (
	gbInt      gbCompare = iota // INT: the same integer
	gbText                      // TEXT: the same string
	gbNumeric                   // FLOAT from numeric: the same number, exactly
	gbDouble                    // FLOAT from double precision: the same float64
	gbBool                      // BOOLEAN
	gbDateTime                  // DATETIME: the instant's wall clock in gbZone, to the second
	gbJSONText                  // TEXT holding JSON: the same document
)

var gbColumns = map[string]gbCompare{
	"id": gbInt, "name": gbText, "qty": gbInt, "price": gbNumeric, "ratio": gbDouble,
	"flag": gbBool, "at": gbDateTime, "doc": gbJSONText, "tags": gbJSONText, "note": gbText,
}

// TestGPTBotsMirrorWithFaults runs the daemon in-process from a real
// PostgreSQL to the fake GPTBots, which fails about 12% of the calls (5xx,
// 502 from a proxy, dropped connections, throttling, answers lost after the
// change was applied) and refuses every name starting with "reject-". A
// snapshot of existing rows, then inserts, updates (some leaving a TOASTed
// value unchanged), deletes, NULLs and key changes, with a stop and restart
// on the same state and changes made while the daemon is down, must end
// with the GPTBots table equal to the source field by field, except the
// rows whose name the fake refuses, and those refusals must be exactly
// the dead letters.
func TestGPTBotsMirrorWithFaults(t *testing.T) {
	ctx := context.Background()
	loc, err := time.LoadLocation(gbZone)
	require.NoError(t, err)
	db, dsn, slot := gbNewDatabase(t)
	gbSeed(t, db, 1500)

	fake := gptbotsfake.New(gptbotsfake.Options{APIKey: gbAPIKey, RequestsPerSecond: -1, RetryAfter: 1, Seed: 11})
	t.Cleanup(fake.Close)
	require.NoError(t, fake.AddTable(gbTableID, gbFields))
	fake.SetReject(func(_, field string, v any) string {
		if s, ok := v.(string); ok && field == "name" && strings.HasPrefix(s, gbPoison) {
			return gbRejectReason
		}
		return ""
	})
	fake.SetFaultRate(0.12, gptbotsfake.FaultServerError, gptbotsfake.FaultBadGateway, gptbotsfake.FaultDrop,
		gptbotsfake.FaultLostAnswer, gptbotsfake.FaultLostAnswer, gptbotsfake.FaultThrottle)
	refusals, proxyURL := gbStartRecorder(t, fake.URL())

	stateDir := t.TempDir()
	cfg, err := config.Parse("e2e-gptbots.yaml", []byte(gbConfigYAML(dsn, slot, stateDir, proxyURL)), func(name string) (string, bool) {
		if name == gbKeyVar {
			return gbAPIKey, true
		}
		return "", false
	})
	require.NoError(t, err)

	logs := &gbLog{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log (end):\n%s", logs.tail(64<<10))
		}
	})
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))

	started := time.Now()
	d := gbStart(t, cfg, logger)
	w := gbNewWorkload(db, 3, 1501)
	// The first changes race the snapshot, the rest follow it.
	require.NoError(t, w.run(ctx, 100, 20*time.Millisecond))
	gbWaitStreaming(t, db, slot, d, 2*time.Minute)
	// One of each fault while streaming, so that every kind certainly
	// hits a write, whatever the random draws.
	fake.InjectFaults(gptbotsfake.FaultServerError, gptbotsfake.FaultBadGateway, gptbotsfake.FaultDrop,
		gptbotsfake.FaultLostAnswer, gptbotsfake.FaultThrottle)
	require.NoError(t, w.run(ctx, 150, 25*time.Millisecond))

	// A stop in the middle, as on SIGTERM: it drains and returns nil.
	require.NoError(t, d.stop(gbShutdown+15*time.Second), "a stop drains and returns nil")
	// Changes made while the daemon is down wait in the slot.
	require.NoError(t, w.run(ctx, 80, 0))
	d = gbStart(t, cfg, logger)
	require.NoError(t, w.run(ctx, 250, 25*time.Millisecond))

	gbWaitMirror(t, db, fake, loc, gbMirrorTimeout, d)
	gbWaitSlot(t, db, slot, time.Minute, d)
	require.NoError(t, d.stop(gbShutdown+15*time.Second))
	elapsed := time.Since(started)

	// Every record the fake refused, and only those, is a dead letter, and
	// every row whose name the fake refuses now has its dead letter.
	refused, unexpected := refusals.snapshot()
	require.Empty(t, unexpected, "the fake refused items for another reason than the poisoned name")
	letters := gbDeadLetters(t, stateDir)
	require.NotEmpty(t, refused, "the workload must make the fake refuse some rows")
	gbRequireSameSet(t, refused, letters)
	src, err := gbSourceRows(ctx, db)
	require.NoError(t, err)
	poisoned := 0
	for id, row := range src {
		if name, _ := row["name"].(string); strings.HasPrefix(name, gbPoison) {
			poisoned++
			require.Contains(t, letters, gbRefusal{id, name}, "row %s holds a refused name but has no dead letter", id)
		}
	}

	reqs := fake.Requests()
	faults := map[gptbotsfake.Fault]int{}
	writes := 0
	for _, r := range reqs {
		if r.Path == gptbotsfake.UpdatePath || r.Path == gptbotsfake.DeletePath {
			writes++
			faults[r.Fault]++
		}
	}
	t.Logf("%d changes in %s; %d calls, %d writes; faults on writes: %v; %d refusals (%d rows refused now); daemon log:%s",
		w.runs, elapsed.Round(time.Millisecond), len(reqs), writes, faults, len(refused), poisoned, gbLogSummary(logs.String()))
	for _, f := range []gptbotsfake.Fault{gptbotsfake.FaultServerError, gptbotsfake.FaultBadGateway, gptbotsfake.FaultDrop, gptbotsfake.FaultLostAnswer, gptbotsfake.FaultThrottle} {
		require.Positive(t, faults[f], "fault %s never hit a write", f)
	}
	require.NotContains(t, logs.String(), gbAPIKey, "the API key leaked into the log")
}

// gbNewDatabase creates the test's database with gb_items and returns a
// connection to it, its DSN and a slot name of its own (slots are
// cluster-wide, so the database's unique name serves).
// The database's defaults are ones a user might well have; the daemon
// must not depend on them.
func gbNewDatabase(t *testing.T) (*pgx.Conn, string, string) {
	t.Helper()
	ctx := context.Background()
	dsn := cluster.NewDatabase(t)
	db, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close(context.Background()) })
	var name string
	require.NoError(t, db.QueryRow(ctx, "SELECT current_database()").Scan(&name))
	_, err = db.Exec(ctx, gbSchema+fmt.Sprintf(`
ALTER DATABASE %[1]s SET TimeZone TO 'America/Sao_Paulo';
ALTER DATABASE %[1]s SET DateStyle TO 'SQL, DMY';
ALTER DATABASE %[1]s SET extra_float_digits TO 0;`, pgx.Identifier{name}.Sanitize()))
	require.NoError(t, err)
	// This session reads the source for comparison: doubles in their
	// shortest exact form, not rounded to 15 digits.
	_, err = db.Exec(ctx, "SET extra_float_digits TO 1")
	require.NoError(t, err)
	return db, dsn, name
}

func gbConfigYAML(dsn, slot, stateDir, baseURL string) string {
	return fmt.Sprintf(`
source:
  dsn: %q
  slot: %s
  publication: gb_items
  status_interval: 1s
state:
  dir: %q
pipeline:
  flush_interval: 200ms
  snapshot_chunk_rows: 500
  shutdown_timeout: %s
log:
  level: info
  format: json
http:
  listen: 127.0.0.1:0
targets:
  bots:
    type: gptbots
    base_url: %s
    api_key: ${%s}
    requests_per_second: 50
    request_timeout: 5s
    timezone: %s
mappings:
  - source: public.gb_items
    target: bots
    table: %s
`, dsn, slot, stateDir, gbShutdown, baseURL, gbKeyVar, gbZone, gbTableID)
}

// gbSeed fills gb_items with n rows through PostgreSQL alone: NULLs,
// out-of-line notes on every 20th row, timestamps across China's DST
// years, names the fake refuses on every 97th row, and rows at the edges
// of each type.
func gbSeed(t *testing.T, db *pgx.Conn, n int) {
	t.Helper()
	ctx := context.Background()
	_, err := db.Exec(ctx, `
INSERT INTO gb_items
SELECT g,
       CASE WHEN g % 17 = 0 THEN NULL WHEN g % 97 = 0 THEN 'reject-seed-' || g ELSE 'name ' || g END,
       CASE WHEN g % 13 = 0 THEN NULL ELSE g % 1000 - 500 END,
       CASE WHEN g % 11 = 0 THEN NULL ELSE (g * 1.25)::numeric END,
       CASE WHEN g % 9 = 0 THEN NULL ELSE g / 7.0::float8 END,
       CASE WHEN g % 7 = 0 THEN NULL ELSE g % 2 = 0 END,
       CASE WHEN g % 19 = 0 THEN NULL ELSE '1986-05-03 23:59:59.999999+08'::timestamptz + g * interval '3 hours 7 microseconds' END,
       CASE WHEN g % 23 = 0 THEN NULL ELSE jsonb_build_object('g', g, 'half', g / 2.0, 'tags', jsonb_build_array('a', g)) END,
       CASE WHEN g % 29 = 0 THEN NULL ELSE ARRAY['t' || g, 'comma, ' || g, NULL] END,
       CASE WHEN g % 20 = 0 THEN repeat(lpad(g::text, 8, '0'), 1000) END
FROM generate_series(1, $1::int) g`, n)
	require.NoError(t, err)
	// Keys beyond 2^53 lose digits in a float64: the filter of an upsert
	// or delete must carry them exactly.
	_, err = db.Exec(ctx, `
INSERT INTO gb_items VALUES
 (9007199254740993, 'O''Brien, "quoted" \ back', 2147483647, 12345678901234567890.123456789, 1.7976931348623157e308, true,
  '1999-12-31 23:59:59.999999+14', '{"n": 12345678901234567890, "f": 1.5e300, "s": "x\"y", "a": [1, 2.50, null, true], "k": {"多": "语言"}}',
  ARRAY['多语言', '', 'NULL', NULL, 'q"uote', 'back\slash'], repeat('x', 5000)),
 (9223372036854775807, '', -2147483648, -0.000001, 5e-324, false, '1970-01-01 00:00:00+00', '[]', '{}', NULL),
 (9223372036854775806, 'reject-seed-max', 0, 0, '-0', NULL, '2038-01-19 03:14:08+00', '"just a string"', NULL, NULL)`)
	require.NoError(t, err)
}

// gbBigIDs are the seeded keys beyond 2^53, which the workload updates now
// and then.
var gbBigIDs = []int64{9007199254740993, 9223372036854775807, 9223372036854775806}

// gbWorkload makes random changes to gb_items. It is not safe for
// concurrent use.
type gbWorkload struct {
	db     *pgx.Conn
	rng    *rand.Rand
	nextID int64
	runs   int
}

func gbNewWorkload(db *pgx.Conn, seed uint64, firstID int64) *gbWorkload {
	return &gbWorkload{db: db, rng: rand.New(rand.NewPCG(seed, seed+1)), nextID: firstID}
}

var (
	gbNames = []string{"", "plain", `O'Brien, "quoted" \ back`, "多语言 ✓ 🚀", "null", "line\nbreak\ttab", "  padded  ", "rejected? no: not a prefix"}
	// gbPrices are numeric text within float64's range, as a FLOAT field
	// needs: exact digits, exponents numeric expands.
	gbPrices = []string{"0", "-0.000001", "1.50", "12345678901234567890.123456789", "1e-20", "99999999999999999999999999999999999.5"}
	gbRatios = []string{"0", "-0", "0.1", "1e300", "5e-324", "-1.7976931348623157e308", "2.2250738585072014e-308", "123456.789"}
	gbDocs   = []string{`{}`, `[]`, `"text"`, `0`, `true`, `{"n": 98765432109876543210, "x": [1.0, -2e-3, "s", false]}`, `{"nested": {"deep": {"k": "多"}}, "empty": ""}`}
	// gbTags are array literals: quoted commas and quotes, NULL elements
	// next to the string "NULL", an empty array.
	gbTags = []string{`{}`, `{plain}`, `{"a,b","c d",NULL}`, `{"q\"uote","back\\slash","多语言"}`, `{"","null","NULL"}`}
)

func (w *gbWorkload) pick(n int) bool { return w.rng.IntN(n) == 0 }

func (w *gbWorkload) name() any {
	switch {
	case w.pick(6):
		return nil
	case w.pick(30):
		return fmt.Sprintf("%sn%d", gbPoison, w.runs)
	case w.pick(2):
		return gbNames[w.rng.IntN(len(gbNames))]
	}
	return fmt.Sprintf("name %d", w.rng.IntN(1_000_000))
}

func (w *gbWorkload) qty() any {
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

func (w *gbWorkload) price() any {
	switch w.rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return gbPrices[w.rng.IntN(len(gbPrices))]
	}
	return fmt.Sprintf("%d.%06d", w.rng.IntN(1_000_000)-500_000, w.rng.IntN(1_000_000))
}

func (w *gbWorkload) ratio() any {
	switch w.rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return gbRatios[w.rng.IntN(len(gbRatios))]
	}
	return strconv.FormatFloat(w.rng.NormFloat64()*1e6, 'g', -1, 64)
}

func (w *gbWorkload) flag() any {
	switch w.rng.IntN(3) {
	case 0:
		return nil
	case 1:
		return true
	}
	return false
}

// at is timestamptz text at microsecond precision in a random offset.
func (w *gbWorkload) at() any {
	if w.pick(10) {
		return nil
	}
	sec := w.rng.Int64N(4_000_000_000) // 1970 to 2096
	zone := time.FixedZone("", (w.rng.IntN(27)-12)*3600+w.rng.IntN(2)*1800)
	return time.Unix(sec, int64(w.rng.IntN(1_000_000))*1000).In(zone).Format("2006-01-02 15:04:05.999999-07:00")
}

func (w *gbWorkload) doc() any {
	switch w.rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return gbDocs[w.rng.IntN(len(gbDocs))]
	}
	return fmt.Sprintf(`{"r": %d, "s": %q, "a": [%d, %d.5]}`, w.rng.IntN(1000), fmt.Sprint("v", w.rng.IntN(100)), w.rng.IntN(10), w.rng.IntN(10))
}

func (w *gbWorkload) tags() any {
	if w.pick(5) {
		return nil
	}
	return gbTags[w.rng.IntN(len(gbTags))]
}

// note is longer than the TOAST threshold a third of the time.
func (w *gbWorkload) note() any {
	switch w.rng.IntN(3) {
	case 0:
		return nil
	case 1:
		return strings.Repeat(fmt.Sprintf("%08d", w.rng.IntN(100_000_000)), 1000)
	}
	return fmt.Sprint("short note ", w.rng.IntN(1000))
}

// someID is an id that may or may not still exist: a change to a missing
// row changes nothing, which is fine.
func (w *gbWorkload) someID() int64 { return 1 + w.rng.Int64N(w.nextID-1) }

func (w *gbWorkload) freshID() int64 {
	id := w.nextID
	w.nextID++
	return id
}

const gbInsertSQL = `INSERT INTO gb_items (id, name, qty, price, ratio, flag, at, doc, tags, note)
VALUES ($1, $2::text, $3::int, $4::text::numeric, $5::text::float8, $6::bool, $7::text::timestamptz, $8::text::jsonb, $9::text::text[], $10::text)`

// gbToastedRow selects the $1-th row holding an out-of-line note.
const gbToastedRow = `(SELECT id FROM gb_items WHERE length(note) > 4000 ORDER BY id OFFSET $1 LIMIT 1)`

// gbExecer is a connection or a transaction.
type gbExecer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func (w *gbWorkload) insert(ctx context.Context, q gbExecer, id int64) error {
	_, err := q.Exec(ctx, gbInsertSQL, id, w.name(), w.qty(), w.price(), w.ratio(), w.flag(), w.at(), w.doc(), w.tags(), w.note())
	return err
}

// step runs one random change (one transaction).
func (w *gbWorkload) step(ctx context.Context) error {
	w.runs++
	db := w.db
	var err error
	switch w.rng.IntN(16) {
	case 0, 1:
		err = w.insert(ctx, db, w.freshID())
	case 2, 3: // leaves note unchanged: it arrives as 'u' and must stay
		_, err = db.Exec(ctx, `UPDATE gb_items SET qty = coalesce(qty, 0) % 1000 + 1, name = $2 WHERE id = `+gbToastedRow, w.rng.IntN(40), w.name())
	case 4:
		_, err = db.Exec(ctx, `UPDATE gb_items SET price = $2::text::numeric, ratio = $3::text::float8, at = $4::text::timestamptz, flag = $5 WHERE id = $1`,
			w.someID(), w.price(), w.ratio(), w.at(), w.flag())
	case 5:
		_, err = db.Exec(ctx, `UPDATE gb_items SET name = NULL, qty = NULL, price = NULL, ratio = NULL, flag = NULL, at = NULL, doc = NULL, tags = NULL WHERE id = $1`, w.someID())
	case 6:
		_, err = db.Exec(ctx, `DELETE FROM gb_items WHERE id = $1`, w.someID())
	case 7: // a key change without an out-of-line value
		_, err = db.Exec(ctx, `UPDATE gb_items SET id = $2, qty = 7 WHERE id = $1`, w.someID(), w.freshID())
	case 8: // a key change whose new row must be completed from the source
		_, err = db.Exec(ctx, `UPDATE gb_items SET id = $2 WHERE id = `+gbToastedRow, w.rng.IntN(40), w.freshID())
	case 9:
		_, err = db.Exec(ctx, `UPDATE gb_items SET note = $2::text WHERE id = $1`, w.someID(), w.note())
	case 10:
		_, err = db.Exec(ctx, `UPDATE gb_items SET doc = $2::text::jsonb, tags = $3::text::text[] WHERE id = $1`, w.someID(), w.doc(), w.tags())
	case 11: // the fake refuses this name: the row becomes a dead letter
		_, err = db.Exec(ctx, `UPDATE gb_items SET name = $2 WHERE id = $1`, w.someID(), fmt.Sprintf("%s%d", gbPoison, w.runs))
	case 12: // a refused row gets a good name, and lands whole again
		_, err = db.Exec(ctx, `UPDATE gb_items SET name = 'healed ' || $2::int WHERE id = (SELECT id FROM gb_items WHERE name LIKE 'reject-%' ORDER BY id OFFSET $1 LIMIT 1)`,
			w.rng.IntN(5), w.runs)
	case 13: // delete then insert the same key, and update another row twice, in one transaction
		a, b := w.someID(), w.someID()
		err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `DELETE FROM gb_items WHERE id = $1`, a); err != nil {
				return err
			}
			if err := w.insert(ctx, tx, a); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE gb_items SET qty = 1 WHERE id = $1`, b); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE gb_items SET name = $2 WHERE id = $1`, b, w.name())
			return err
		})
	case 14: // several rows in one statement
		_, err = db.Exec(ctx, `UPDATE gb_items SET qty = coalesce(qty, 0) % 1000 - 1 WHERE id BETWEEN $1 AND $1 + 20`, w.someID())
	case 15:
		_, err = db.Exec(ctx, `UPDATE gb_items SET ratio = $2::text::float8, flag = NOT coalesce(flag, false) WHERE id = $1`,
			gbBigIDs[w.rng.IntN(len(gbBigIDs))], w.ratio())
	}
	if err != nil {
		return fmt.Errorf("workload step %d: %w", w.runs, err)
	}
	return nil
}

// run makes n changes, pausing up to maxPause between them so that they
// spread over several batches.
func (w *gbWorkload) run(ctx context.Context, n int, maxPause time.Duration) error {
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

// gbRefusal is one record the fake refused: its key and refused name.
type gbRefusal struct{ id, name string }

// gbRecorder notes every item the fake's update answers list as failed,
// from the answers themselves, so that "the rows the fake rejected" is
// what the fake said, not what the daemon understood.
type gbRecorder struct {
	mu         sync.Mutex
	refused    map[gbRefusal]bool
	unexpected []string
}

// gbStartRecorder starts a loopback proxy to the fake that records
// refusals. When the fake hangs up (a dropped connection, a lost answer),
// the proxy hangs up on the daemon too, so that the daemon meets the
// fault the fake injected.
func gbStartRecorder(t *testing.T, upstream string) (*gbRecorder, string) {
	t.Helper()
	rec := &gbRecorder{refused: map[gbRefusal]bool{}}
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(client.CloseIdleConnections)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		req.Header = r.Header.Clone()
		resp, err := client.Do(req)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		defer resp.Body.Close()
		answer, err := io.ReadAll(resp.Body)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		if r.URL.Path == gptbotsfake.UpdatePath && resp.StatusCode == http.StatusOK {
			rec.note(answer)
		}
		maps.Copy(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(answer)
	}))
	t.Cleanup(srv.Close)
	return rec, srv.URL
}

func (g *gbRecorder) note(answer []byte) {
	var ans gptbotsfake.UpdateAnswer
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := json.Unmarshal(answer, &ans); err != nil {
		g.unexpected = append(g.unexpected, fmt.Sprintf("unreadable update answer %q: %v", answer, err))
		return
	}
	for _, d := range ans.FailDetail {
		var filter map[string]json.Number
		var value map[string]any
		errF := gbUnmarshal(d.UpsertData.Filter, &filter)
		errV := gbUnmarshal(d.UpsertData.Value, &value)
		name, _ := value["name"].(string)
		if errF != nil || errV != nil || filter["id"] == "" || d.FailReason != gbRejectReason || !strings.HasPrefix(name, gbPoison) {
			g.unexpected = append(g.unexpected, fmt.Sprintf("filter %s value %.200s: %s", d.UpsertData.Filter, d.UpsertData.Value, d.FailReason))
			continue
		}
		g.refused[gbRefusal{filter["id"].String(), name}] = true
	}
}

func (g *gbRecorder) snapshot() (map[gbRefusal]bool, []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.refused), slices.Clone(g.unexpected)
}

// gbDeadLetters reads the dead-letter file into refusals, checking each
// line's fields on the way.
func gbDeadLetters(t *testing.T, stateDir string) map[gbRefusal]bool {
	t.Helper()
	out := map[gbRefusal]bool{}
	data, err := os.ReadFile(filepath.Join(stateDir, state.DeadLetterFile))
	if errors.Is(err, os.ErrNotExist) {
		return out
	}
	require.NoError(t, err)
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var dl state.DeadLetter
		require.NoError(t, json.Unmarshal([]byte(line), &dl), "dead letter %d", i+1)
		var id, rowID json.Number
		var name string
		require.NoError(t, gbUnmarshal(dl.Key["id"], &id), "dead letter %d key: %s", i+1, line)
		require.NoError(t, gbUnmarshal(dl.Row["id"], &rowID), "dead letter %d row id: %s", i+1, line)
		require.NoError(t, gbUnmarshal(dl.Row["name"], &name), "dead letter %d row name: %s", i+1, line)
		require.Equal(t, "bots", dl.Target, "dead letter %d", i+1)
		require.Equal(t, gbTableID, dl.Table, "dead letter %d", i+1)
		require.Equal(t, "public.gb_items", dl.Source, "dead letter %d", i+1)
		require.Equal(t, "upsert", dl.Op, "dead letter %d", i+1)
		require.Equal(t, id, rowID, "dead letter %d: key and row disagree", i+1)
		require.Contains(t, dl.Error, gbRejectReason, "dead letter %d", i+1)
		require.NotEmpty(t, dl.LSN, "dead letter %d", i+1)
		out[gbRefusal{id.String(), name}] = true
	}
	return out
}

// gbRequireSameSet fails with the differences when the fake's refusals
// and the dead letters are not the same records.
func gbRequireSameSet(t *testing.T, refused, letters map[gbRefusal]bool) {
	t.Helper()
	var onlyRefused, onlyLetters []string
	for r := range refused {
		if !letters[r] {
			onlyRefused = append(onlyRefused, fmt.Sprintf("%s %q", r.id, r.name))
		}
	}
	for r := range letters {
		if !refused[r] {
			onlyLetters = append(onlyLetters, fmt.Sprintf("%s %q", r.id, r.name))
		}
	}
	slices.Sort(onlyRefused)
	slices.Sort(onlyLetters)
	if len(onlyRefused)+len(onlyLetters) > 0 {
		t.Fatalf("the fake refused %d records and the dead-letter file holds %d;\n  refused but no dead letter: %v\n  dead letter the fake never refused: %v",
			len(refused), len(letters), onlyRefused, onlyLetters)
	}
}

// gbSourceRows reads gb_items as PostgreSQL's own JSON rendering of each
// row, keyed by id: independent of the daemon's decoding and encoding.
func gbSourceRows(ctx context.Context, db *pgx.Conn) (map[string]map[string]any, error) {
	rows, err := db.Query(ctx, `SELECT id::text, to_jsonb(t)::text FROM gb_items t`)
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
		var row map[string]any
		if err := gbUnmarshal([]byte(text), &row); err != nil {
			return nil, err
		}
		out[id] = row
	}
	return out, rows.Err()
}

// gbFakeRows reads the fake's table keyed by id; a field not set is NULL.
func gbFakeRows(fake *gptbotsfake.Server) (map[string]map[string]any, []string) {
	out := map[string]map[string]any{}
	var problems []string
	for _, r := range fake.Rows(gbTableID) {
		id := fmt.Sprint(r["id"])
		if _, dup := out[id]; dup {
			problems = append(problems, "two target rows with id "+id)
		}
		out[id] = r
	}
	return out, problems
}

// gbDiff lists how the fake's rows differ from the source's, field by
// field and by each field's type, skipping rows whose name the fake
// refuses (their target row keeps an earlier state, or is absent).
func gbDiff(src, dst map[string]map[string]any, loc *time.Location) []string {
	var problems []string
	for id, s := range src {
		if name, _ := s["name"].(string); strings.HasPrefix(name, gbPoison) {
			continue
		}
		d, ok := dst[id]
		if !ok {
			problems = append(problems, "missing id "+id)
			continue
		}
		for col, cmp := range gbColumns {
			sv := s[col]
			dv, set := d[col]
			switch {
			case sv == nil && set:
				problems = append(problems, fmt.Sprintf("id %s: %s is NULL in the source, %s in the target", id, col, gbShort(dv)))
			case sv != nil && !set:
				problems = append(problems, fmt.Sprintf("id %s: %s is %s in the source, not set in the target", id, col, gbShort(sv)))
			case sv != nil && !gbSame(cmp, sv, dv, loc):
				problems = append(problems, fmt.Sprintf("id %s: %s: source %s, target %s", id, col, gbShort(sv), gbShort(dv)))
			}
		}
		for col := range d {
			if _, ok := gbColumns[col]; !ok {
				problems = append(problems, fmt.Sprintf("id %s: unexpected target field %s", id, col))
			}
		}
	}
	for id := range dst {
		if _, ok := src[id]; !ok {
			problems = append(problems, "stale id "+id)
		}
	}
	slices.Sort(problems)
	return problems
}

// gbSame compares a source value (from to_jsonb) with a stored GPTBots
// value (int64, json.Number, bool or string).
func gbSame(cmp gbCompare, src, dst any, loc *time.Location) bool {
	switch cmp {
	case gbInt:
		n, ok1 := src.(json.Number)
		i, ok2 := dst.(int64)
		return ok1 && ok2 && n.String() == strconv.FormatInt(i, 10)
	case gbNumeric:
		return gbSameNumber(src, dst)
	case gbDouble:
		a, ok1 := src.(json.Number)
		b, ok2 := dst.(json.Number)
		if !ok1 || !ok2 {
			return false
		}
		fa, err1 := a.Float64()
		fb, err2 := b.Float64()
		return err1 == nil && err2 == nil && fa == fb
	case gbDateTime:
		s, ok1 := src.(string)
		d, ok2 := dst.(string)
		at, err := time.Parse(time.RFC3339Nano, s)
		return ok1 && ok2 && err == nil && at.In(loc).Format(time.DateTime) == d
	case gbJSONText:
		d, ok := dst.(string)
		var doc any
		return ok && gbUnmarshal([]byte(d), &doc) == nil && gbSameJSON(src, doc)
	}
	return src == dst
}

// gbSameNumber compares JSON numbers by value with arbitrary precision.
func gbSameNumber(a, b any) bool {
	an, ok1 := a.(json.Number)
	bn, ok2 := b.(json.Number)
	if !ok1 || !ok2 {
		return false
	}
	ar, ok1 := new(big.Rat).SetString(an.String())
	br, ok2 := new(big.Rat).SetString(bn.String())
	return ok1 && ok2 && ar.Cmp(br) == 0
}

func gbSameJSON(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !gbSameJSON(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !gbSameJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		return gbSameNumber(a, b)
	}
	return a == b
}

// gbUnmarshal decodes one JSON value, keeping numbers exact.
func gbUnmarshal(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	return d.Decode(v)
}

func gbShort(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 120 {
		return fmt.Sprintf("%s… (%d bytes)", b[:120], len(b))
	}
	return string(b)
}

// gbWaitMirror polls until the fake's table equals the source's (refused
// rows aside), failing after timeout or as soon as the daemon stops.
func gbWaitMirror(t *testing.T, db *pgx.Conn, fake *gptbotsfake.Server, loc *time.Location, timeout time.Duration, d *gbRun) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	var problems []string
	for time.Since(start) < timeout {
		src, err := gbSourceRows(ctx, db)
		require.NoError(t, err)
		dst, dups := gbFakeRows(fake)
		problems = append(dups, gbDiff(src, dst, loc)...)
		if len(problems) == 0 {
			t.Logf("mirror equals the source (%d rows) after %s", len(src), time.Since(start).Round(time.Millisecond))
			return
		}
		if err := d.exited(); err != nil {
			t.Fatalf("the daemon stopped while the mirror differed in %d ways (e.g. %s): %v", len(problems), strings.Join(problems[:min(3, len(problems))], "; "), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("the mirror did not equal the source within %s: %d differences, e.g.\n  %s",
		timeout, len(problems), strings.Join(problems[:min(10, len(problems))], "\n  "))
}

// gbWaitStreaming waits until the daemon holds the slot, which it does
// only once the snapshot is confirmed.
func gbWaitStreaming(t *testing.T, db *pgx.Conn, slot string, d *gbRun, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var active bool
		err := db.QueryRow(context.Background(), `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&active)
		if err == nil && active {
			return
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			require.NoError(t, err)
		}
		if err := d.exited(); err != nil {
			t.Fatalf("the daemon stopped before streaming: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the daemon did not start streaming within %s", timeout)
}

// gbWaitSlot waits until the slot confirms the server's current WAL
// position: every change is acknowledged, so every refusal is a dead
// letter by now.
func gbWaitSlot(t *testing.T, db *pgx.Conn, slot string, timeout time.Duration, d *gbRun) {
	t.Helper()
	ctx := context.Background()
	var target string
	require.NoError(t, db.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&target))
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var done bool
		err := db.QueryRow(ctx, `SELECT coalesce(confirmed_flush_lsn >= $2::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = $1`, slot, target).Scan(&done)
		require.NoError(t, err)
		if done {
			return
		}
		if err := d.exited(); err != nil {
			t.Fatalf("the daemon stopped before acknowledging %s: %v", target, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("slot %s did not confirm %s within %s", slot, target, timeout)
}

// gbRun is app.Run started in the background.
type gbRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // what Run returned, set before done is closed
	once   sync.Once
	result error
}

func gbStart(t *testing.T, cfg *config.Config, logger *slog.Logger) *gbRun {
	ctx, cancel := context.WithCancel(context.Background())
	r := &gbRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = app.Run(ctx, cfg, app.Deps{Logger: logger})
	}()
	// A failed test must still not leave Run behind.
	t.Cleanup(func() { _ = r.stop(time.Minute) })
	return r
}

// exited returns an error once Run has returned, nil while it runs.
func (r *gbRun) exited() error {
	select {
	case <-r.done:
		return fmt.Errorf("app.Run returned %v", r.err)
	default:
		return nil
	}
}

// stop cancels Run's context and returns what Run returned, or an error
// when it did not return within bound.
func (r *gbRun) stop(bound time.Duration) error {
	r.once.Do(func() {
		r.cancel()
		select {
		case <-r.done:
			r.result = r.err
		case <-time.After(bound):
			r.result = fmt.Errorf("app.Run did not return within %s of the stop", bound)
		}
	})
	return r.result
}

// gbLog collects the daemon's JSON log from its goroutines.
type gbLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *gbLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *gbLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tail keeps the end of the log, where the reason for a failure is.
func (l *gbLog) tail(limit int) string {
	s := l.String()
	if len(s) <= limit {
		return s
	}
	s = s[len(s)-limit:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "…\n" + s
}

// gbLogSummary counts log lines by level and message, the shape of a run
// at a glance.
func gbLogSummary(log string) string {
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
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(&b, "\n  %5d× %s", counts[k], k)
	}
	return b.String()
}
