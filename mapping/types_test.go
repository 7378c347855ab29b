package mapping_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/internal/pgtest"
	"github.com/replicator-cdc/replicator/mapping"
	"github.com/replicator-cdc/replicator/replication"
)

// zooTypes are the user-defined types the tests against PostgreSQL use.
const zooTypes = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN posint2 AS posint;
CREATE DOMAIN intlist AS integer[];
CREATE DOMAIN stamp AS timestamptz;
CREATE DOMAIN cash AS money;
CREATE TYPE pair AS (n integer, s text);
CREATE TYPE floatrange AS RANGE (subtype = float8);
`

// sourceConn is a connection to a fresh database of a throwaway cluster,
// with the daemon's session settings, holding zooTypes.
func sourceConn(t *testing.T) *pgx.Conn {
	t.Helper()
	c := pgtest.Start(t)
	ctx := context.Background()
	conn, err := replication.ConnectSQL(ctx, c.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	_, err = conn.Exec(ctx, zooTypes)
	require.NoError(t, err)
	return conn
}

// pgValue returns expr's value as its type's output function writes it
// (as pgoutput sends it), the OID of its type and to_json of it.
func pgValue(t *testing.T, conn *pgx.Conn, expr string) (text string, oid uint32, toJSON string) {
	t.Helper()
	ctx := context.Background()
	err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT pg_typeof(x)::oid, to_json(x)::text FROM (SELECT %s AS x) s`, expr)).Scan(&oid, &toJSON)
	require.NoError(t, err, expr)
	rows, err := conn.Query(ctx, "SELECT "+expr, pgx.QueryResultFormats{pgx.TextFormatCode})
	require.NoError(t, err, expr)
	defer rows.Close()
	require.True(t, rows.Next(), expr)
	text = string(rows.RawValues()[0])
	rows.Close()
	require.NoError(t, rows.Err())
	return text, oid, toJSON
}

// encodeWith resolves oid through the catalog and encodes text.
func encodeWith(t *testing.T, types mapping.Types, oid uint32, format, text string) (replicator.Value, error) {
	t.Helper()
	return mapping.EncodeAs(types, oid, format, text)
}

// TestTypeResolution: types the mapping does not know by OID are resolved
// through the catalog: domains (also of domains, and of arrays) as their
// base type, arrays whose elements are domains, enums, composites and
// ranges as text.
func TestTypeResolution(t *testing.T) {
	conn := sourceConn(t)
	types := &replication.TypeCatalog{Conn: conn}
	tests := []struct {
		expr     string
		wantKind replicator.Kind
		wantJSON string
	}{
		{`42::posint`, replicator.KindInt, `42`},
		{`7::posint2`, replicator.KindInt, `7`},
		{`ARRAY[1,2]::posint[]`, replicator.KindJSON, `[1,2]`},
		{`ARRAY[3]::posint2[]`, replicator.KindJSON, `[3]`},
		{`'{{1,2},{3,4}}'::intlist`, replicator.KindJSON, `[[1,2],[3,4]]`},
		{`ARRAY['{1,2}'::intlist, '{3}'::intlist]`, replicator.KindJSON, `[[1,2],[3]]`},
		{`'2024-01-02 03:04:05+00'::stamp`, replicator.KindTimestampTZ, `"2024-01-02T03:04:05+00:00"`},
		{`'-1234.5'::cash`, replicator.KindNumeric, `-1234.50`},
		{`'happy'::mood`, replicator.KindText, `"happy"`},
		{`ARRAY['sad','ok']::mood[]`, replicator.KindJSON, `["sad","ok"]`},
		{`ROW(1, 'a b')::pair`, replicator.KindText, `"(1,\"a b\")"`},
		{`ARRAY[ROW(1, 'x,y')::pair]`, replicator.KindJSON, `["(1,\"x,y\")"]`},
		{`floatrange(1.5, 2.5)`, replicator.KindText, `"[1.5,2.5)"`},
		{`ARRAY[floatrange(1, 2)]`, replicator.KindJSON, `["[1,2)"]`},
		{`ARRAY['(1,1),(0,0)'::box, '(3,3),(2,2)'::box]`, replicator.KindJSON, `["(1,1),(0,0)","(3,3),(2,2)"]`},
		{`'$1,234,567.89'::money`, replicator.KindNumeric, `1234567.89`},
		{`'-0.01'::money`, replicator.KindNumeric, `-0.01`},
		{`ARRAY['1.5'::money, '-1000'::money]`, replicator.KindJSON, `[1.50,-1000.00]`},
		{`'1 2'::int2vector`, replicator.KindText, `"1 2"`},
		{`int4multirange(int4range(1,3), int4range(5,7))`, replicator.KindText, `"{[1,3),[5,7)}"`},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			text, oid, _ := pgValue(t, conn, tt.expr)
			v, err := encodeWith(t, types, oid, "", text)
			require.NoError(t, err)
			require.Equal(t, tt.wantKind, v.Kind, "text %q", text)
			require.Equal(t, tt.wantJSON, string(replicator.AppendJSON(nil, v)), "text %q", text)
		})
	}
}

// TestBuiltinTypesMatchCatalog: the built-in types the mapping knows
// without the catalog are what the catalog says they are.
func TestBuiltinTypesMatchCatalog(t *testing.T) {
	conn := sourceConn(t)
	types := &replication.TypeCatalog{Conn: conn}
	for arr, elem := range mapping.BuiltinArray {
		info, err := types.LookupType(arr)
		require.NoError(t, err)
		require.Equal(t, byte('A'), info.Category, info.Name)
		require.Equal(t, elem, info.ElemOID, info.Name)
		delim, err := mapping.ElementDelimiter(types, elem)
		require.NoError(t, err)
		want, err := types.LookupType(elem)
		require.NoError(t, err)
		require.Equal(t, want.Delim, delim, info.Name)
	}
	for _, oid := range mapping.BuiltinScalars() {
		info, err := types.LookupType(oid)
		require.NoError(t, err)
		require.Equal(t, byte('b'), info.Type, info.Name)
	}
}

// TestArraysMatchPostgres compares the transcoder with PostgreSQL's own
// to_json of the same arrays. They agree exactly (integers byte for byte,
// other numbers digit for digit, strings and documents equal) except for
// the forms the design chooses differently, listed in want.
func TestArraysMatchPostgres(t *testing.T) {
	conn := sourceConn(t)
	types := &replication.TypeCatalog{Conn: conn}
	tests := []struct {
		expr string
		want string // "" means: equal to to_json
	}{
		{`'{1,-2,NULL,2147483647}'::int4[]`, ""},
		{`'{{1,2},{3,4}}'::int8[]`, ""},
		{`'[0:1][5:6]={{9223372036854775807,-9223372036854775808},{0,NULL}}'::int8[]`, ""},
		{`'{{{1}},{{2}}}'::int2[]`, ""},
		{`'{}'::int4[]`, ""},
		{`'{1.50,NaN,Infinity,-Infinity,12345678901234567890.123456789}'::numeric[]`, ""},
		{`'{NaN,Infinity,-Infinity,1.5e300,-0,1e-5,0.1}'::float8[]`, ""},
		{`'{NaN,Infinity,-Infinity,3.4028235e38,0.1}'::float4[]`, ""},
		{`'{t,f,NULL}'::bool[]`, ""},
		{`ARRAY['{"a": 1e400, "b": 12345678901234567890}'::jsonb, '[1, 2.50]', NULL]`, ""},
		{`ARRAY['{"b":1,"a":2,"b":3}'::json, '  [1e400]  ']`, ""},
		{`ARRAY['\x0102ff'::bytea, '\x', NULL]`, ""},
		{`'{2024-01-02,infinity,-infinity}'::date[]`, ""},
		{`'{"0044-03-15 BC",10000-01-01}'::date[]`, `["0044-03-15 BC","10000-01-01"]`},
		{`'{"2024-01-02 03:04:05.123456+00",infinity}'::timestamptz[]`, ""},
		{`'{"0044-03-15 12:00:00+00 BC","10000-01-01 00:00:00+00"}'::timestamptz[]`, `["0044-03-15 12:00:00+00 BC","10000-01-01 00:00:00+00"]`},
		{`'{"2024-01-02 03:04:05",-infinity}'::timestamp[]`, ""},
		{`'{03:04:05.123456,24:00:00}'::time[]`, ""},
		{`'{03:04:05+02}'::timetz[]`, ""},
		{`'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'::uuid[]`, ""},
		{`'{"1 year 2 mons","-00:00:01"}'::interval[]`, ""},
		{`'{192.168.0.1,10.0.0.0/8,::1}'::inet[]`, ""},
		{`'{10.0.0.0/8}'::cidr[]`, ""},
		{`'{08:00:2b:01:02:03}'::macaddr[]`, ""},
		{`'{"[1,5)",empty}'::int4range[]`, ""},
		{`ARRAY[tstzrange('2024-01-01', '2024-01-02')]`, ""},
		{`'{"NULL",NULL,"a\\b","c\"d","e,f"," padded ","",多语言}'::text[]`, ""},
		{`'{"x","y z"}'::varchar(5)[]`, ""},
		{`'{ab,"c "}'::char(3)[]`, ""},
		{`'{(1,1),(0,0);(2,2),(1,1)}'::box[]`, ""},
		{`'{"(1,2)","(3,4)"}'::point[]`, ""},
		{`'{1010,1}'::varbit[]`, ""},
		{`ARRAY['happy', 'sad']::mood[]`, ""},
		{`ARRAY[ROW(1, 'x,y')::pair]`, `["(1,\"x,y\")"]`},
		{`'{$1.00,-$2.50}'::money[]`, `[1.00,-2.50]`},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			text, oid, toJSON := pgValue(t, conn, tt.expr)
			v, err := encodeWith(t, types, oid, "", text)
			require.NoError(t, err, text)
			require.Equal(t, replicator.KindJSON, v.Kind)
			got := string(v.Raw)
			if tt.want != "" {
				require.Equal(t, tt.want, got, "PostgreSQL text %s, to_json %s", text, toJSON)
				return
			}
			if strings.Contains(tt.expr, "int") && !strings.Contains(tt.expr, "range") && !strings.Contains(tt.expr, "interval") {
				require.Equal(t, toJSON, got, "integers byte for byte; text %s", text)
			}
			require.True(t, sameJSON(t, toJSON, got), "PostgreSQL text %s\n to_json %s\n ours    %s", text, toJSON, got)
		})
	}
}

// sameJSON compares two documents with numbers by their digits.
func sameJSON(t *testing.T, a, b string) bool {
	t.Helper()
	decode := func(s string) any {
		d := json.NewDecoder(strings.NewReader(s))
		d.UseNumber()
		var v any
		require.NoError(t, d.Decode(&v), s)
		return v
	}
	return reflect.DeepEqual(decode(a), decode(b))
}

// TestUnixMatchesPostgres: unix_ms and unix_s give PostgreSQL's own epoch
// (rounded down) for values of every year it allows, BC and past 9999
// included, where Go's time parsing could not go.
func TestUnixMatchesPostgres(t *testing.T) {
	conn := sourceConn(t)
	types := &replication.TypeCatalog{Conn: conn}
	// PostgreSQL's extract(epoch) divides with 16 significant digits, so
	// past year 200000 its own answer is rounded: those are computed by hand.
	exprs := []struct{ expr, wantMS, wantS string }{
		{expr: `'2024-01-02 03:04:05.123999+00'::timestamptz`},
		{expr: `'1969-12-31 23:59:59.9995+00'::timestamptz`},
		{expr: `'1970-01-01 00:00:00+00'::timestamptz`},
		{expr: `'0044-03-15 12:00:00.5+00 BC'::timestamptz`},
		{expr: `'4713-11-24 00:00:00+00 BC'::timestamptz`},
		{expr: `'0001-01-01 00:00:00+00'::timestamptz`},
		{expr: `'0001-12-31 23:59:59.999999+00 BC'::timestamptz`},
		{expr: `'10000-01-01 00:00:00+00'::timestamptz`},
		{expr: `'294276-12-31 23:59:59.999999+00'::timestamptz`, wantMS: "9224318015999999", wantS: "9224318015999"},
		{expr: `'2024-02-29 12:00:00'::timestamp`},
		{expr: `'0100-03-01 00:00:00 BC'::timestamp`},
		{expr: `'12345-06-07 08:09:10.11'::timestamp`},
		{expr: `'2000-02-29'::date`},
		{expr: `'1900-03-01'::date`},
		{expr: `'0001-01-01 BC'::date`},
		{expr: `'4714-11-24 BC'::date`},
		{expr: `'5874897-12-31'::date`},
		{expr: `'2024-01-02 03:04:05+00'::stamp`},
	}
	for _, tt := range exprs {
		t.Run(tt.expr, func(t *testing.T) {
			text, oid, _ := pgValue(t, conn, tt.expr)
			wantMS, wantS := tt.wantMS, tt.wantS
			if wantMS == "" {
				// Dates count from midnight UTC, as the encoder does.
				query := `SELECT floor(extract(epoch FROM x) * 1000)::text, floor(extract(epoch FROM x))::text FROM (SELECT (%s)::timestamptz AS x) s`
				if strings.HasSuffix(tt.expr, "::date") {
					query = `SELECT ((x - date '1970-01-01')::int8 * 86400000)::text, ((x - date '1970-01-01')::int8 * 86400)::text FROM (SELECT %s AS x) s`
				}
				require.NoError(t, conn.QueryRow(context.Background(), fmt.Sprintf(query, tt.expr)).Scan(&wantMS, &wantS))
			}
			v, err := encodeWith(t, types, oid, mapping.FormatUnixMS, text)
			require.NoError(t, err, text)
			require.Equal(t, replicator.KindInt, v.Kind)
			require.Equal(t, wantMS, string(v.Raw), text)
			v, err = encodeWith(t, types, oid, mapping.FormatUnixS, text)
			require.NoError(t, err, text)
			require.Equal(t, wantS, string(v.Raw), text)
		})
	}
}
