package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

// itemsSchema has a column of each type the design's encoding table
// promises to keep exact. big is stored out of line and uncompressed, so
// that an update leaving it alone sends it as "unchanged" ('u'), which must
// leave the target's value as it is.
const itemsSchema = `
CREATE TABLE items (
  id bigint PRIMARY KEY,
  name text,
  qty integer,
  price numeric,
  ratio double precision,
  flag boolean,
  at timestamptz,
  doc jsonb,
  tags text[],
  big text
);
ALTER TABLE items ALTER COLUMN big SET STORAGE EXTERNAL;
`

// poisonPrefix starts every name a fake that refuses records refuses.
const poisonPrefix = "reject-"

// palette says which values a target can hold and which the fake refuses.
type palette struct {
	// specials: NaN and infinities (Feishu's numeric and timestamptz hold
	// them; GPTBots' FLOAT and DATETIME do not).
	specials bool
	// poison: names starting with poisonPrefix, which the fake refuses, so
	// that their records become dead letters.
	poison bool
}

// seedRows fills items with n rows through PostgreSQL alone: NULLs,
// out-of-line values on every 20th row, timestamps across China's DST
// years, refused names on every 97th row when the palette has them, and a
// few rows at the edges of each type.
func seedRows(t *testing.T, db *pgx.Conn, n int, p palette) {
	t.Helper()
	ctx := context.Background()
	_, err := db.Exec(ctx, `
INSERT INTO items
SELECT g,
       CASE WHEN g % 17 = 0 THEN NULL WHEN $2 AND g % 97 = 0 THEN 'reject-seed-' || g ELSE 'name ' || g END,
       CASE WHEN g % 13 = 0 THEN NULL ELSE g % 1000 - 500 END,
       CASE WHEN g % 11 = 0 THEN NULL ELSE (g * 1.25)::numeric END,
       CASE WHEN g % 9 = 0 THEN NULL ELSE g / 7.0::float8 END,
       CASE WHEN g % 7 = 0 THEN NULL ELSE g % 2 = 0 END,
       CASE WHEN g % 19 = 0 THEN NULL ELSE '1986-05-03 23:59:59.999999+08'::timestamptz + g * interval '3 hours 7 microseconds' END,
       CASE WHEN g % 23 = 0 THEN NULL ELSE jsonb_build_object('g', g, 'half', g / 2.0, 'tags', jsonb_build_array('a', g)) END,
       CASE WHEN g % 29 = 0 THEN NULL ELSE ARRAY['t' || g, 'comma, ' || g, NULL] END,
       CASE WHEN g % 20 = 0 THEN repeat(lpad(g::text, 8, '0'), 1000) END
FROM generate_series(1, $1::int) g`, n, p.poison)
	require.NoError(t, err)
	// Keys beyond 2^53 lose digits in a float64: the filter of an upsert
	// or delete and the conflict key must carry them exactly.
	_, err = db.Exec(ctx, `
INSERT INTO items VALUES
 (9007199254740993, 'O''Brien, "quoted" \ back', 2147483647, 12345678901234567890.123456789, 1.7976931348623157e308, true,
  '1999-12-31 23:59:59.999999+14', '{"n": 12345678901234567890, "f": 1.5e300, "s": "x\"y", "a": [1, 2.50, null, true], "k": {"多": "语言"}}',
  ARRAY['多语言', '', 'NULL', NULL, 'q"uote', 'back\slash'], repeat('x', 5000)),
 (9223372036854775807, '', -2147483648, CASE WHEN $1 THEN 'NaN' ELSE -0.000001 END, 5e-324, false,
  CASE WHEN $1 THEN 'infinity'::timestamptz ELSE '1970-01-01 00:00:00+00'::timestamptz END, '[]', '{}', NULL),
 (9223372036854775806, CASE WHEN $2 THEN 'reject-seed-max' ELSE 'null' END, 0, -0.000001, '-0', NULL,
  '2038-01-19 03:14:08+00', '"just a string"', NULL, NULL)`, p.specials, p.poison)
	require.NoError(t, err)
}

// bigIDs are the seeded keys beyond 2^53, which the workload updates now
// and then.
var bigIDs = []int64{9007199254740993, 9223372036854775807, 9223372036854775806}

// workload makes random changes to items: inserts, updates (some leaving
// the out-of-line value unchanged), deletes, NULLs, key changes and small
// multi-statement transactions. It is not safe for concurrent use.
type workload struct {
	db     *pgx.Conn
	rng    *rand.Rand
	values palette
	nextID int64
	runs   int
}

func newWorkload(db *pgx.Conn, values palette, seed uint64, firstID int64) *workload {
	return &workload{db: db, rng: rand.New(rand.NewPCG(seed, seed+1)), values: values, nextID: firstID}
}

var (
	names = []string{"", "plain", `O'Brien, "quoted" \ back`, "多语言 ✓ 🚀", "comma,separated.dots:(parens)", "null", "line\nbreak\ttab", "  padded  ", "rejected? no: not a prefix"}
	// Prices are numeric text: exact digits, exponents that numeric
	// expands; specialPrices only where the target holds them.
	prices        = []string{"0", "-0.000001", "1.50", "12345678901234567890.123456789", "1e-20", "99999999999999999999999999999999999.5"}
	specialPrices = []string{"NaN", "Infinity", "-Infinity"}
	ratios        = []string{"0", "-0", "0.1", "1e300", "5e-324", "-1.7976931348623157e308", "2.2250738585072014e-308", "123456.789"}
	docs          = []string{`{}`, `[]`, `"text"`, `0`, `true`, `{"n": 98765432109876543210, "x": [1.0, -2e-3, "s", false]}`, `{"nested": {"deep": {"k": "多"}}, "empty": ""}`}
	// tags are array literals: quoted commas and quotes, NULL elements next
	// to the string "NULL", an empty array.
	tags = []string{`{}`, `{plain}`, `{"a,b","c d",NULL}`, `{"q\"uote","back\\slash","多语言"}`, `{"","null","NULL"}`}
)

func (w *workload) pick(n int) bool { return w.rng.IntN(n) == 0 }

func (w *workload) poisonName() string { return fmt.Sprintf("%sn%d", poisonPrefix, w.runs) }

func (w *workload) name() any {
	switch {
	case w.pick(6):
		return nil
	case w.values.poison && w.pick(30):
		return w.poisonName()
	case w.pick(2):
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
		if w.values.specials && w.pick(2) {
			return specialPrices[w.rng.IntN(len(specialPrices))]
		}
		return prices[w.rng.IntN(len(prices))]
	}
	return fmt.Sprintf("%d.%06d", w.rng.IntN(1_000_000)-500_000, w.rng.IntN(1_000_000))
}

func (w *workload) ratio() any {
	switch w.rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return ratios[w.rng.IntN(len(ratios))]
	}
	return strconv.FormatFloat(w.rng.NormFloat64()*1e6, 'g', -1, 64)
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
		if w.values.specials {
			return "infinity"
		}
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

func (w *workload) tags() any {
	if w.pick(5) {
		return nil
	}
	return tags[w.rng.IntN(len(tags))]
}

// big is longer than the TOAST threshold, and so stored out of line, a
// third of the time.
func (w *workload) big() any {
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
func (w *workload) someID() int64 { return 1 + w.rng.Int64N(w.nextID-1) }

func (w *workload) freshID() int64 {
	id := w.nextID
	w.nextID++
	return id
}

const insertSQL = `INSERT INTO items (id, name, qty, price, ratio, flag, at, doc, tags, big)
VALUES ($1, $2::text, $3::int, $4::text::numeric, $5::text::float8, $6::bool, $7::text::timestamptz, $8::text::jsonb, $9::text::text[], $10::text)`

// toastedRow selects the $1-th row holding an out-of-line value.
const toastedRow = `(SELECT id FROM items WHERE length(big) > 4000 ORDER BY id OFFSET $1 LIMIT 1)`

// execer is a connection or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func (w *workload) insert(ctx context.Context, q execer, id int64) error {
	_, err := q.Exec(ctx, insertSQL, id, w.name(), w.qty(), w.price(), w.ratio(), w.flag(), w.at(), w.doc(), w.tags(), w.big())
	return err
}

// step runs one random change (one transaction).
func (w *workload) step(ctx context.Context) error {
	w.runs++
	db := w.db
	var err error
	switch w.rng.IntN(18) {
	case 0, 1:
		err = w.insert(ctx, db, w.freshID())
	case 2, 3: // leaves big unchanged: it arrives as 'u' and must stay
		_, err = db.Exec(ctx, `UPDATE items SET qty = coalesce(qty, 0) % 1000 + 1, name = $2 WHERE id = `+toastedRow, w.rng.IntN(40), w.name())
	case 4:
		_, err = db.Exec(ctx, `UPDATE items SET price = $2::text::numeric, ratio = $3::text::float8, at = $4::text::timestamptz, flag = $5 WHERE id = $1`,
			w.someID(), w.price(), w.ratio(), w.at(), w.flag())
	case 5:
		_, err = db.Exec(ctx, `UPDATE items SET name = NULL, qty = NULL, price = NULL, ratio = NULL, flag = NULL, at = NULL, doc = NULL, tags = NULL WHERE id = $1`, w.someID())
	case 6:
		_, err = db.Exec(ctx, `DELETE FROM items WHERE id = $1`, w.someID())
	case 7: // a key change without an out-of-line value
		_, err = db.Exec(ctx, `UPDATE items SET id = $2, qty = 7 WHERE id = $1`, w.someID(), w.freshID())
	case 8: // a key change whose new row must be completed from the source
		_, err = db.Exec(ctx, `UPDATE items SET id = $2 WHERE id = `+toastedRow, w.rng.IntN(40), w.freshID())
	case 9:
		_, err = db.Exec(ctx, `UPDATE items SET big = $2::text WHERE id = $1`, w.someID(), w.big())
	case 10:
		_, err = db.Exec(ctx, `UPDATE items SET doc = $2::text::jsonb, tags = $3::text::text[] WHERE id = $1`, w.someID(), w.doc(), w.tags())
	case 11:
		_, err = db.Exec(ctx, `UPDATE items SET doc = jsonb_set(coalesce(doc, '{}'), '{n}', to_jsonb($2::bigint)) WHERE id = $1 AND jsonb_typeof(doc) = 'object'`, w.someID(), w.rng.Int64())
	case 12: // a refused name: the row becomes a dead letter
		name := w.name()
		if w.values.poison {
			name = w.poisonName()
		}
		_, err = db.Exec(ctx, `UPDATE items SET name = $2 WHERE id = $1`, w.someID(), name)
	case 13: // a refused row gets a good name, and lands whole again
		_, err = db.Exec(ctx, `UPDATE items SET name = 'healed ' || $2::int WHERE id = (SELECT id FROM items WHERE name LIKE 'reject-%' ORDER BY id OFFSET $1 LIMIT 1)`,
			w.rng.IntN(5), w.runs)
	case 14: // delete then insert the same key, and update another row twice, in one transaction
		a, b := w.someID(), w.someID()
		err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `DELETE FROM items WHERE id = $1`, a); err != nil {
				return err
			}
			if err := w.insert(ctx, tx, a); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE items SET qty = 1 WHERE id = $1`, b); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE items SET name = $2 WHERE id = $1`, b, w.name())
			return err
		})
	case 15: // a key moved away and back in one transaction: the row at the
		// intermediate key is gone when the change is decoded
		from, via := w.someID(), w.freshID()
		err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE items SET id = $2 WHERE id = $1`, from, via); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE items SET id = $1, flag = NOT coalesce(flag, false) WHERE id = $2`, from, via)
			return err
		})
	case 16: // several rows in one statement
		_, err = db.Exec(ctx, `UPDATE items SET qty = coalesce(qty, 0) % 1000 - 1 WHERE id BETWEEN $1 AND $1 + 20`, w.someID())
	case 17:
		_, err = db.Exec(ctx, `UPDATE items SET ratio = $2::text::float8, flag = NOT coalesce(flag, false) WHERE id = $1`,
			bigIDs[w.rng.IntN(len(bigIDs))], w.ratio())
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
