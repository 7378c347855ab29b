package feishu

import (
	"context"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/internal/pgtest"
)

// valueSample is one value for one column type. lenient marks a form the
// checker sends although PostgreSQL 15 refuses it: newer versions accept
// it, or the answer depends on the C library or on limits left to the API.
type valueSample struct {
	dataType string
	v        replicator.Value
	lenient  bool
}

func valueSamples() []valueSample {
	var out []valueSample
	add := func(dataType string, k replicator.Kind, raws ...string) {
		for _, r := range raws {
			out = append(out, valueSample{dataType: dataType, v: val(k, r)})
		}
	}
	lenient := func(dataType string, raws ...string) {
		for _, r := range raws {
			out = append(out, valueSample{dataType: dataType, v: val(replicator.KindText, r), lenient: true})
		}
	}
	text := replicator.KindText
	add("bigint", text, "12", " 12 ", "\t12\n", "+5", "-5", "0012", "1e5", "1.0", "", " ", "abc", "12abc", "- 5", "5-", "++5", "+", "-",
		"\u00a05", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "true", "NaN", "Infinity")
	add("bigint", replicator.KindInt, "42", "-9223372036854775809")
	add("bigint", replicator.KindBool, "true")
	add("bigint", replicator.KindNumeric, "1.5", "Infinity")
	add("bigint", replicator.KindJSON, `"17"`, `17`, `{"a":1}`, `[1]`, `"x"`)
	lenient("bigint", "0x1F", "1_000", "0o17", "0b101")
	add("int8", text, "7", "x")
	add("integer", text, "2147483647", "2147483648", "-2147483648", "-2147483649", " 3 ")
	add("smallint", text, "32767", "32768", "-32768", "-32769")
	add("numeric", text, "1.5", " 1.5 ", "+1.5", "-.5", "5.", ".", "+.", "1e5", "1E-5", "1.5e+3", "1e", "1e+", "e5", "NaN", "nan", " NaN ", "+NaN", "-NaN",
		"Infinity", "-Infinity", "+Infinity", "inf", "-inf", "+inf", "INF", "infinity", "Infinityx", "infinit", "1,5", "1.2.3", "abc", "", "$5", "1 5", "12abc")
	add("numeric(10,2)", text, "3.14", "x")
	add("decimal", text, "2", "two")
	lenient("numeric", "0x1F", "1_000", "1e1001", "-1e-1001")
	add("double precision", text, "1.5", " 1.5 ", "1e5", "-1e-5", "+1", ".5", "5.", "NaN", "-Infinity", "inf", "+inf", "INFINITY", "abc", "", " ", "1.5x", "1e",
		"1e+", "1,5", ".", "-", "12 34", "1.2.3", "e5", "x1")
	lenient("double precision", "1e400", "1e-400", "0x1p3", "nanx", "infx")
	add("float8", text, "2.5", "two")
	add("real", text, "1.5", "abc", "3.4e38")
	lenient("real", "1e39")
	add("boolean", text, "true", "TRUE", " yes ", "y", "ye", "on", "of", "off", "o", "1", "0", "2", "t", "f", "no", "n", "tr", "truex", "", "yes please", "10", "On", "oFF")
	add("boolean", replicator.KindInt, "1", "0", "2")
	add("bool", text, "false", "nope")
	add("uuid", text, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
		"a0eebc999c0b4ef8bb6d6bb9bd380a11", "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11", "{a0eebc999c0b4ef8bb6d6bb9bd380a11}",
		" a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 ", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", "a0eebc9-99c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
		"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-", "-a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11", "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "", "{}")
	add("date", text, "", " ", "2024-01-02", "today", "20240102", "infinity", "Jan 8, 1999")
	add("date", replicator.KindBool, "true", "false")
	add("date", replicator.KindDate, "2024-01-02")
	add("date", replicator.KindJSON, `{"a":1}`, `[1]`)
	add("timestamptz", text, "", "  ", "2024-01-02 03:04:05+02", "epoch", "now")
	add("timestamptz", replicator.KindTimestampTZ, "2024-01-02T03:04:05.123456+00:00", "infinity")
	add("timestamptz", replicator.KindBool, "false")
	add("timestamp with time zone", replicator.KindTimestampTZ, "2024-01-02T03:04:05Z")
	add("timestamp", replicator.KindTimestamp, "2024-01-02T03:04:05.5")
	add("timestamp", text, "")
	add("timestamp without time zone", replicator.KindJSON, `[]`)
	return out
}

// TestRefusesMatchesPostgres holds every checker against PostgreSQL's own
// input functions: a value the checker refuses is one PostgreSQL refuses,
// and, except for the forms marked lenient, a value PostgreSQL refuses is
// one the checker refuses.
func TestRefusesMatchesPostgres(t *testing.T) {
	c := pgtest.Start(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.NewDatabase(t))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var version int
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version))
	for _, s := range valueSamples() {
		text := inputText(s.v)
		_, pgErr := conn.Exec(ctx, "SELECT ($1::text)::"+s.dataType, text)
		accepted := pgErr == nil
		why := refuses(&column{DataType: s.dataType}, s.v)
		if why != "" {
			require.False(t, accepted, "%s %q (%s): PostgreSQL accepts what the checker refuses: %s", s.dataType, text, s.v.Kind, why)
			continue
		}
		if s.lenient {
			continue
		}
		require.True(t, accepted, "%s %q (%s): PostgreSQL refuses (%v) what the checker sends", s.dataType, text, s.v.Kind, pgErr)
	}
	for _, s := range valueSamples() {
		if s.lenient {
			require.Empty(t, refuses(&column{DataType: s.dataType}, s.v), "%s %q is marked lenient", s.dataType, s.v.Raw)
		}
	}
	require.Less(t, version, 160000, "the lenient forms assume PostgreSQL 15 refuses them; on a newer server check them again")
}

// TestRefusesNothingUncertain: arrays, text-like and unknown types are
// never checked.
func TestRefusesNothingUncertain(t *testing.T) {
	for _, c := range []column{
		{DataType: "bigint", IsArray: true}, {DataType: "text"}, {DataType: "character varying(3)"},
		{DataType: "jsonb"}, {DataType: "json"}, {DataType: "bytea"}, {DataType: "inet"}, {DataType: "mystery"},
	} {
		require.Empty(t, refuses(&c, val(replicator.KindText, "certainly not a number {")), c.DataType)
	}
}

var intRef = regexp.MustCompile(`^[ \t\n\v\f\r]*[+-]?[0-9]+[ \t\n\v\f\r]*$`)

// FuzzHoldsInt compares holdsInt with a plain reference: PostgreSQL 15's
// grammar as a regular expression and the range as a big integer.
func FuzzHoldsInt(f *testing.F) {
	for _, s := range []string{"12", " -12 ", "+5", "1e5", "9223372036854775808", "-32769", "0x10", "1_0", "", "\v7\f", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for bits, limit := range map[int]int64{16: 1 << 15, 32: 1 << 31, 64: 0} {
			got := holdsInt(s, bits)
			if newerForm(strings.TrimLeft(strings.Trim(s, " \t\n\v\f\r"), "+-")) {
				continue
			}
			want := intRef.MatchString(s)
			if want {
				n, _ := new(big.Int).SetString(strings.Trim(s, " \t\n\v\f\r"), 10)
				lo, hi := big.NewInt(-limit), big.NewInt(limit-1)
				if bits == 64 {
					lo, hi = new(big.Int).Lsh(big.NewInt(-1), 63), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 63), big.NewInt(1))
				}
				want = n != nil && n.Cmp(lo) >= 0 && n.Cmp(hi) <= 0
			}
			if got != want {
				t.Fatalf("holdsInt(%q, %d) = %v, reference %v", s, bits, got, want)
			}
		}
	})
}

var numericRef = regexp.MustCompile(`^[ \t\n\v\f\r]*([+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|(?i:nan|[+-]?(infinity|inf)))[ \t\n\v\f\r]*$`)

// FuzzHoldsNumeric compares holdsNumeric with numeric_in's grammar as a
// regular expression.
func FuzzHoldsNumeric(f *testing.F) {
	for _, s := range []string{"1.5", " -.5 ", "5.", ".", "1e", "1e-5", "NaN", "+NaN", "-inf", "Infinityx", "0x1F", "1_0", "", "1.2.3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if newerForm(strings.TrimLeft(strings.Trim(s, " \t\n\v\f\r"), "+-")) {
			return
		}
		if got, want := holdsNumeric(s), numericRef.MatchString(s); got != want {
			t.Fatalf("holdsNumeric(%q) = %v, reference %v", s, got, want)
		}
	})
}

// The common values of a mirrored column are checked without copying them:
// no allocation per value, and the same verdict as the full check.
func TestRefusesCommonValuesWithoutAllocating(t *testing.T) {
	cases := []struct {
		dataType string
		v        replicator.Value
	}{
		{"bigint", val(replicator.KindInt, "-922337203685477580")},
		{"integer", val(replicator.KindInt, "123456789")},
		{"smallint", val(replicator.KindInt, "-1234")},
		{"numeric", val(replicator.KindNumeric, "-12345678901234567890.5")},
		{"numeric(10,2)", val(replicator.KindInt, "7")},
		{"boolean", val(replicator.KindBool, "true")},
		{"timestamptz", val(replicator.KindTimestampTZ, "2024-01-02T03:04:05.123456+00:00")},
		{"date", val(replicator.KindDate, "2024-01-02")},
	}
	for _, c := range cases {
		col := column{DataType: c.dataType}
		require.True(t, surelyHolds(typeName(c.dataType), c.v), "%s %s", c.dataType, c.v.Raw)
		require.Zero(t, testing.AllocsPerRun(20, func() { _ = refuses(&col, c.v) }), "%s %s", c.dataType, c.v.Raw)
		text := string(c.v.Raw)
		full := map[string]func(string) bool{
			"bigint": func(s string) bool { return holdsInt(s, 64) }, "integer": func(s string) bool { return holdsInt(s, 32) },
			"smallint": func(s string) bool { return holdsInt(s, 16) }, "numeric": holdsNumeric, "numeric(10,2)": holdsNumeric,
			"boolean": holdsBool, "timestamptz": func(s string) bool { return holdsDateTime(c.v, s) }, "date": func(s string) bool { return holdsDateTime(c.v, s) },
		}[c.dataType]
		require.True(t, full(text), "%s %s", c.dataType, text)
	}
	for _, v := range []replicator.Value{val(replicator.KindInt, "12345"), val(replicator.KindInt, "1e5"), val(replicator.KindText, "1")} {
		require.False(t, surelyHolds("smallint", v), "%s", v.Raw)
	}
}

// refuses is refusesAs for a column as the schema answer gives it.
func refuses(c *column, v replicator.Value) string {
	return refusesAs(c, typeName(c.DataType), v)
}

// Columns are resolved per run of records of one shape: a record whose
// columns come in another order, or fewer, is checked against its own.
func TestStripRefusedFollowsEachRecordsColumns(t *testing.T) {
	cols := map[string]column{
		"id":  {Name: "id", DataType: "bigint", IsUnique: true},
		"qty": {Name: "qty", DataType: "integer", IsAllowNull: true},
		"day": {Name: "day", DataType: "date", IsAllowNull: true},
	}
	id := func(n int) replicator.Field { return field("id", val(replicator.KindInt, strconv.Itoa(n))) }
	qty := func(s string) replicator.Field { return field("qty", val(replicator.KindText, s)) }
	day := func(s string) replicator.Field { return field("day", val(replicator.KindText, s)) }
	b := replicator.Batch{Table: replicator.TableSpec{Table: "t", Key: []string{"id"}}, Records: []replicator.Record{
		upsertRec(id(1), qty("1"), day("2024-01-02")),
		upsertRec(id(2), qty("x"), day("2024-01-02")),
		upsertRec(id(3), day("2024-01-02"), qty("2")),
		upsertRec(id(4), day("2024-01-02"), qty("y")),
		upsertRec(id(5), qty("z")),
		upsertRec(id(6), qty("3"), field("extra", val(replicator.KindText, "z"))),
		upsertRec(id(7), qty("4"), day("2024-01-02")),
	}}
	keep, stripped, rejected := stripRefused(&b, cols)
	require.Empty(t, rejected)
	require.Len(t, keep, 7)
	got := map[string]string{}
	for _, vs := range stripped {
		for _, v := range vs {
			got[string(v.original.Key[0].Value.Raw)] = v.column
		}
	}
	require.Equal(t, map[string]string{"2": "qty", "4": "qty", "5": "qty"}, got)
	for _, i := range []int{0, 2, 5, 6} {
		require.Len(t, keep[i].Fields, len(b.Records[i].Fields), "record %d", i)
	}
}
