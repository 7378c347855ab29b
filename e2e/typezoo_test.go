package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/replication"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

// zooColumn is one column of the type zoo: its source type, the Feishu
// column type that holds what the daemon sends, three values (SQL) and
// how PostgreSQL itself renders the value the target must equal.
type zooColumn struct {
	name, typ, feishuType string
	// vals are SQL expressions: a snapshot value, a streamed insert's, and
	// an update's; the edge values are among them.
	vals [3]string
	// gptbotsType is the GPTBots field type; "" means TEXT.
	gptbotsType string
	// want is the json PostgreSQL renders for the documented form, with
	// %s standing for the column; "" means to_json(%s). json, not jsonb:
	// jsonb would turn 1.5e300 into 301 digits.
	want string
}

// asText is the documented form of types sent as their PostgreSQL text.
const asText = "to_json(%s::text)"

// dateLike sends finite dates and timestamps of years 1 to 9999 as ISO
// 8601 (as to_jsonb does), and BC, year-10000 and infinite ones as their
// PostgreSQL text.
const dateLike = "CASE WHEN NOT isfinite(%[1]s) OR %[1]s::text LIKE '%% BC' OR extract(year FROM %[1]s) >= 10000 THEN to_json(%[1]s::text) ELSE to_json(%[1]s) END"

var zooColumns = []zooColumn{
	{name: "c_int2", typ: "smallint", feishuType: "smallint", gptbotsType: "INT", vals: [3]string{"-32768", "0", "32767"}},
	{name: "c_int4", typ: "integer", feishuType: "integer", gptbotsType: "INT", vals: [3]string{"2147483647", "-1", "-2147483648"}},
	{name: "c_int8", typ: "bigint", feishuType: "bigint", gptbotsType: "INT", vals: [3]string{"9223372036854775807", "12345678901234567", "-9223372036854775808"}},
	{name: "c_oid", typ: "oid", feishuType: "bigint", gptbotsType: "INT", vals: [3]string{"4294967295", "0", "12345"}, want: "to_json(%s::int8)"},
	{name: "c_numeric", typ: "numeric", feishuType: "numeric", vals: [3]string{"12345678901234567890.123456789", "'NaN'", "'-Infinity'"}},
	{name: "c_numeric_scaled", typ: "numeric(10,2)", feishuType: "numeric", gptbotsType: "FLOAT", vals: [3]string{"1.5", "-0.01", "99999999.99"}},
	{name: "c_real", typ: "real", feishuType: "real", vals: [3]string{"'3.4028235e38'", "'NaN'", "'-Infinity'"}},
	{name: "c_float8", typ: "double precision", feishuType: "double precision", vals: [3]string{"'1.5e300'", "'Infinity'", "'0.1'"}},
	{name: "c_money", typ: "money", feishuType: "numeric", gptbotsType: "FLOAT", vals: [3]string{"-1234.5", "0", "92233720368547758.07"}, want: "to_json(%s::numeric)"},
	{name: "c_bool", typ: "boolean", feishuType: "boolean", gptbotsType: "BOOLEAN", vals: [3]string{"true", "false", "true"}},
	{name: "c_text", typ: "text", feishuType: "text", vals: [3]string{`'O''Brien "q" \ 多 ✓'`, "''", "'null'"}},
	{name: "c_varchar", typ: "varchar(20)", feishuType: "text", vals: [3]string{"'abc'", "'line' || chr(10) || 'break'", "' padded '"}},
	{name: "c_char", typ: "char(5)", feishuType: "text", vals: [3]string{"'ab'", "'abcde'", "''"}},
	{name: "c_name", typ: "name", feishuType: "text", vals: [3]string{"'pg_class'", "'x'", "'多'"}},
	{name: "c_bytea", typ: "bytea", feishuType: "bytea", vals: [3]string{`'\xdeadbeef'`, `'\x'`, `'\x00ff'`}},
	{name: "c_uuid", typ: "uuid", feishuType: "uuid", vals: [3]string{"'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'", "'00000000-0000-0000-0000-000000000000'", "gen_random_uuid()"}},
	{name: "c_json", typ: "json", feishuType: "jsonb", vals: [3]string{`'{"b": 1, "a": 1e400, "b": 2}'`, `'[12345678901234567890, 1.50]'`, `'"s"'`}},
	{name: "c_jsonb", typ: "jsonb", feishuType: "jsonb", vals: [3]string{`'{"n": 12345678901234567890, "f": 1.5e300}'`, `'[]'`, `'{"k": {"多": [null, true]}}'`}},
	{name: "c_date", typ: "date", feishuType: "text", vals: [3]string{"'2024-02-29'", "'0044-03-15 BC'", "'10000-01-01'"}, want: dateLike},
	{name: "c_date_inf", typ: "date", feishuType: "text", vals: [3]string{"'infinity'", "'-infinity'", "'1970-01-01'"}, want: dateLike},
	{name: "c_date_plain", typ: "date", feishuType: "date", gptbotsType: "DATETIME", vals: [3]string{"'2024-02-29'", "'0001-01-01'", "'9999-12-31'"}},
	{name: "c_timestamp_plain", typ: "timestamp", feishuType: "timestamp", gptbotsType: "DATETIME", vals: [3]string{"'2024-01-02 03:04:05.999999'", "'1970-01-01 00:00:00'", "'9999-12-31 23:59:59'"}},
	{name: "c_timestamptz_plain", typ: "timestamptz", feishuType: "timestamptz", gptbotsType: "DATETIME", vals: [3]string{"'2024-01-02 03:04:05.123456+08'", "'1999-12-31 23:59:59.5-11:30'", "'0001-01-01 00:00:00+00'"}},
	{name: "c_time", typ: "time", feishuType: "text", vals: [3]string{"'03:04:05.123456'", "'24:00:00'", "'00:00:00'"}},
	{name: "c_timetz", typ: "timetz", feishuType: "text", vals: [3]string{"'03:04:05+02'", "'23:59:59.999999-12:30'", "'00:00:00+00'"}, want: asText},
	{name: "c_timestamp", typ: "timestamp", feishuType: "text", vals: [3]string{"'2024-01-02 03:04:05.123456'", "'0100-03-01 00:00:00 BC'", "'-infinity'"}, want: dateLike},
	{name: "c_timestamptz", typ: "timestamptz", feishuType: "text", vals: [3]string{"'2024-01-02 03:04:05.123456+08'", "'0044-03-15 12:00:00+00 BC'", "'10000-01-01 00:00:00+00'"}, want: dateLike},
	{name: "c_timestamptz_inf", typ: "timestamptz", feishuType: "text", vals: [3]string{"'infinity'", "'1969-12-31 23:59:59.999999+00'", "'-infinity'"}, want: dateLike},
	{name: "c_interval", typ: "interval", feishuType: "text", vals: [3]string{"'1 year 2 months 3 days 04:05:06.7'", "'-00:00:01'", "'0'"}},
	{name: "c_inet", typ: "inet", feishuType: "text", vals: [3]string{"'192.168.0.1'", "'2001:db8::1/64'", "'10.1.2.3/8'"}},
	{name: "c_cidr", typ: "cidr", feishuType: "text", vals: [3]string{"'10.0.0.0/8'", "'2001:db8::/32'", "'192.168.1.0/24'"}},
	{name: "c_macaddr", typ: "macaddr", feishuType: "text", vals: [3]string{"'08:00:2b:01:02:03'", "'ff:ff:ff:ff:ff:ff'", "'00:00:00:00:00:00'"}},
	{name: "c_macaddr8", typ: "macaddr8", feishuType: "text", vals: [3]string{"'08:00:2b:01:02:03:04:05'", "'00:00:00:00:00:00:00:00'", "'08:00:2b:01:02:03'"}},
	{name: "c_bit", typ: "bit(4)", feishuType: "text", vals: [3]string{"B'1010'", "B'0000'", "B'1111'"}},
	{name: "c_varbit", typ: "varbit", feishuType: "text", vals: [3]string{"B'101'", "B''", "B'1'"}},
	{name: "c_point", typ: "point", feishuType: "text", vals: [3]string{"'(1,2)'", "'(-1.5,1e300)'", "'(0,0)'"}},
	{name: "c_line", typ: "line", feishuType: "text", vals: [3]string{"'{1,-1,0}'", "'{0,1,2}'", "'{1,0,-3}'"}},
	{name: "c_lseg", typ: "lseg", feishuType: "text", vals: [3]string{"'[(0,0),(1,1)]'", "'[(1,2),(3,4)]'", "'[(0,0),(0,0)]'"}},
	{name: "c_box", typ: "box", feishuType: "text", vals: [3]string{"'(1,1),(0,0)'", "'(3,4),(1,2)'", "'(0,0),(0,0)'"}},
	{name: "c_path", typ: "path", feishuType: "text", vals: [3]string{"'[(0,0),(1,1),(2,0)]'", "'((0,0),(1,1))'", "'[(1,1)]'"}},
	{name: "c_polygon", typ: "polygon", feishuType: "text", vals: [3]string{"'((0,0),(1,1),(1,0))'", "'((0,0))'", "'((1,2),(3,4))'"}},
	{name: "c_circle", typ: "circle", feishuType: "text", vals: [3]string{"'<(0,0),1>'", "'<(1.5,2.5),0.5>'", "'<(0,0),0>'"}},
	{name: "c_tsvector", typ: "tsvector", feishuType: "text", vals: [3]string{"'a fat cat'", "''", "'多 语言:1A'"}},
	{name: "c_tsquery", typ: "tsquery", feishuType: "text", vals: [3]string{"'fat & cat'", "'!a | b'", "'x:*'"}},
	{name: "c_xml", typ: "xml", feishuType: "text", vals: [3]string{`'<a x="1">t</a>'`, "'text only'", "'<多/>'"}},
	{name: "c_pg_lsn", typ: "pg_lsn", feishuType: "text", vals: [3]string{"'16/B374D848'", "'0/0'", "'FFFFFFFF/FFFFFFFF'"}},
	{name: "c_int4range", typ: "int4range", feishuType: "text", vals: [3]string{"'[1,5)'", "'empty'", "'(,)'"}},
	{name: "c_int8range", typ: "int8range", feishuType: "text", vals: [3]string{"'(,10]'", "'[9223372036854775806,9223372036854775807)'", "'empty'"}},
	{name: "c_numrange", typ: "numrange", feishuType: "text", vals: [3]string{"'(1.5,2.5]'", "'[NaN,NaN]'", "'(,)'"}},
	{name: "c_tsrange", typ: "tsrange", feishuType: "text", vals: [3]string{"'[2024-01-01,2024-01-02)'", "'(,infinity)'", "'empty'"}},
	{name: "c_tstzrange", typ: "tstzrange", feishuType: "text", vals: [3]string{"'[2024-01-01 00:00+00,)'", "'[2024-01-01 08:00+08,2024-01-02 00:00+00]'", "'empty'"}},
	{name: "c_daterange", typ: "daterange", feishuType: "text", vals: [3]string{"'[2024-01-01,2024-02-01)'", "'[2024-01-01,2024-01-01]'", "'(,)'"}},
	{name: "c_multirange", typ: "int4multirange", feishuType: "text", vals: [3]string{"'{[1,3),[5,7)}'", "'{}'", "'{(,)}'"}},
	{name: "c_enum", typ: "zoo_mood", feishuType: "text", vals: [3]string{"'happy'", "'sad'", "'ok'"}},
	{name: "c_domain_int", typ: "zoo_posint", feishuType: "integer", gptbotsType: "INT", vals: [3]string{"42", "1", "2147483647"}},
	{name: "c_domain_stamp", typ: "zoo_stamp", feishuType: "text", vals: [3]string{"'2024-01-02 03:04:05+00'", "'infinity'", "'0001-01-01 00:00:00+00 BC'"}, want: dateLike},
	{name: "c_domain_money", typ: "zoo_cash", feishuType: "numeric", gptbotsType: "FLOAT", vals: [3]string{"'1,000.25'", "-0.01", "0"}, want: "to_json(%s::money::numeric)"},
	{name: "c_composite", typ: "zoo_pair", feishuType: "text", vals: [3]string{"ROW(1, 'a b')", "ROW(NULL, 'x,\"y\"')", "ROW(-5, '')"}, want: asText},
	{name: "c_int4_arr", typ: "integer[]", feishuType: "jsonb", vals: [3]string{"'{{1,2},{3,4}}'", "'{1,NULL,3}'", "'[0:1]={7,8}'"}},
	{name: "c_int8_arr", typ: "bigint[]", feishuType: "jsonb", vals: [3]string{"'{9223372036854775807,-9223372036854775808}'", "'{}'", "'{{{1}},{{2}}}'"}},
	{name: "c_numeric_arr", typ: "numeric[]", feishuType: "jsonb", vals: [3]string{"'{1.50,NaN,-Infinity}'", "'{12345678901234567890.123456789}'", "'{{0.1,NULL},{Infinity,-0.000001}}'"}},
	{name: "c_real_arr", typ: "real[]", feishuType: "jsonb", vals: [3]string{"'{NaN,Infinity,-Infinity,1.5}'", "'{3.4028235e38,-0}'", "'{0.1}'"}},
	{name: "c_float8_arr", typ: "double precision[]", feishuType: "jsonb", vals: [3]string{"'{-Infinity,0.1,1e300}'", "'{NaN}'", "'{{1,2},{Infinity,5e-324}}'"}},
	{name: "c_bool_arr", typ: "boolean[]", feishuType: "jsonb", vals: [3]string{"'{t,f,NULL}'", "'{}'", "'{{t},{f}}'"}},
	{name: "c_text_arr", typ: "text[]", feishuType: "jsonb", vals: [3]string{`'{"NULL",NULL,"a,b","c\"d"}'`, `ARRAY['多', E'tab\there', '\', '{}', ' ']`, `'{{a,b},{c,d}}'`}},
	{name: "c_varchar_arr", typ: "varchar[]", feishuType: "jsonb", vals: [3]string{`'{x,"y z"}'`, "'{}'", `'{null}'`}},
	{name: "c_bytea_arr", typ: "bytea[]", feishuType: "jsonb", vals: [3]string{`ARRAY['\x0102'::bytea, '\x', NULL]`, `ARRAY['\xdeadbeef'::bytea]`, `'{}'`}},
	{name: "c_uuid_arr", typ: "uuid[]", feishuType: "jsonb", vals: [3]string{"'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}'", "'{}'", "ARRAY[gen_random_uuid(), gen_random_uuid()]"}},
	{name: "c_json_arr", typ: "json[]", feishuType: "jsonb", vals: [3]string{`ARRAY['{"b": 1, "a": 1e400}'::json, NULL]`, `ARRAY['12345678901234567890'::json]`, `ARRAY['[]'::json, '"x\"y"']`}},
	{name: "c_jsonb_arr", typ: "jsonb[]", feishuType: "jsonb", vals: [3]string{`ARRAY['{"n": 12345678901234567890}'::jsonb, '[1.50]']`, `ARRAY['1e400'::jsonb]`, `ARRAY['{"a": {"b": [1, "多"]}}'::jsonb]`}},
	{name: "c_date_arr", typ: "date[]", feishuType: "jsonb", vals: [3]string{`'{2024-02-29,"0044-03-15 BC",10000-01-01,infinity}'`, "'{-infinity,NULL}'", "'{{2024-01-01},{1970-01-01}}'"}, want: "to_json(%s::text[])"},
	{name: "c_timestamp_arr", typ: "timestamp[]", feishuType: "jsonb", vals: [3]string{`'{"2024-01-02 03:04:05",-infinity}'`, `'{"1999-12-31 23:59:59.999999"}'`, "'{}'"}},
	{name: "c_timestamptz_arr", typ: "timestamptz[]", feishuType: "jsonb", vals: [3]string{`'{"2024-01-02 03:04:05.5+00",infinity}'`, `'{"2024-01-02 03:04:05+08",NULL}'`, `'{{"1970-01-01 00:00:00+00"},{-infinity}}'`}},
	{name: "c_time_arr", typ: "time[]", feishuType: "jsonb", vals: [3]string{"'{03:04:05,24:00:00}'", "'{00:00:00.000001}'", "'{}'"}},
	{name: "c_timetz_arr", typ: "timetz[]", feishuType: "jsonb", vals: [3]string{"'{03:04:05+02}'", "'{00:00:00-00:30}'", "'{}'"}, want: "to_json(%s::text[])"},
	{name: "c_interval_arr", typ: "interval[]", feishuType: "jsonb", vals: [3]string{`'{"1 day","-00:00:01"}'`, `'{"1 year 2 mons"}'`, "'{}'"}},
	{name: "c_inet_arr", typ: "inet[]", feishuType: "jsonb", vals: [3]string{"'{192.168.0.1,10.0.0.0/8}'", "'{::1}'", "'{}'"}},
	{name: "c_cidr_arr", typ: "cidr[]", feishuType: "jsonb", vals: [3]string{"'{10.0.0.0/8}'", "'{2001:db8::/32}'", "'{}'"}},
	{name: "c_macaddr_arr", typ: "macaddr[]", feishuType: "jsonb", vals: [3]string{"'{08:00:2b:01:02:03}'", "'{}'", "'{ff:ff:ff:ff:ff:ff,NULL}'"}},
	{name: "c_money_arr", typ: "money[]", feishuType: "jsonb", vals: [3]string{"'{1.00,-2.50}'", "'{92233720368547758.07}'", "'{}'"}, want: "to_json(%s::numeric[])"},
	{name: "c_int4range_arr", typ: "int4range[]", feishuType: "jsonb", vals: [3]string{`'{"[1,5)",empty}'`, "'{}'", `'{"(,)"}'`}},
	{name: "c_tstzrange_arr", typ: "tstzrange[]", feishuType: "jsonb", vals: [3]string{"ARRAY['[2024-01-01 00:00+00,2024-01-02 00:00+00)'::tstzrange]", "'{}'", "'{empty}'"}},
	{name: "c_box_arr", typ: "box[]", feishuType: "jsonb", vals: [3]string{"'{(1,1),(0,0);(3,3),(2,2)}'", "'{}'", "'{(0,0),(0,0)}'"}},
	{name: "c_point_arr", typ: "point[]", feishuType: "jsonb", vals: [3]string{`'{"(1,2)"}'`, "'{}'", `'{"(0,0)",NULL}'`}},
	{name: "c_enum_arr", typ: "zoo_mood[]", feishuType: "jsonb", vals: [3]string{"'{sad,happy}'", "'{}'", "'{ok,NULL}'"}},
	{name: "c_domain_arr", typ: "zoo_posint[]", feishuType: "jsonb", vals: [3]string{"'{1,2}'", "'{{3},{4}}'", "'{}'"}},
	{name: "c_composite_arr", typ: "zoo_pair[]", feishuType: "jsonb", vals: [3]string{"ARRAY[ROW(1, 'x,y')::zoo_pair]", "'{}'", `ARRAY[ROW(NULL, NULL)::zoo_pair]`}, want: "to_json(%s::text[])"},
}

const zooTypesSQL = `
CREATE TYPE zoo_mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN zoo_posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN zoo_stamp AS timestamptz;
CREATE DOMAIN zoo_cash AS money;
CREATE TYPE zoo_pair AS (n integer, s text);
`

func zooSchema() string {
	var b strings.Builder
	b.WriteString(zooTypesSQL)
	b.WriteString("CREATE TABLE zoo (id bigint PRIMARY KEY")
	for _, c := range zooColumns {
		fmt.Fprintf(&b, ",\n  %s %s", c.name, c.typ)
	}
	b.WriteString(");\n")
	return b.String()
}

// zooRow writes row id with value set k of every column (an insert, or an
// update of every column when update is set); k < 0 sets every column NULL.
func zooRow(ctx context.Context, db *pgx.Conn, id, k int, update bool) error {
	names := make([]string, len(zooColumns))
	vals := make([]string, len(zooColumns))
	for i, c := range zooColumns {
		names[i] = c.name
		vals[i] = "NULL"
		if k >= 0 {
			vals[i] = fmt.Sprintf("(%s)::%s", c.vals[k], c.typ)
		}
	}
	sql := fmt.Sprintf("INSERT INTO zoo (id, %s) VALUES (%d, %s)", strings.Join(names, ", "), id, strings.Join(vals, ", "))
	if update {
		sql = fmt.Sprintf("UPDATE zoo SET (%s) = (%s) WHERE id = %d", strings.Join(names, ", "), strings.Join(vals, ", "), id)
	}
	_, err := db.Exec(ctx, sql)
	return err
}

// zooWant reads every row as PostgreSQL renders the documented form of each
// value, keyed by id.
func zooWant(ctx context.Context, conn *pgx.Conn) (map[string]map[string]any, error) {
	exprs := make([]string, len(zooColumns))
	for i, c := range zooColumns {
		want := c.want
		if want == "" {
			want = "to_json(%s)"
		}
		exprs[i] = fmt.Sprintf(strings.ReplaceAll(want, "%s", "%[1]s"), c.name) + " AS " + c.name
	}
	return jsonRows(ctx, conn, fmt.Sprintf("SELECT id::text, row_to_json(s)::text FROM (SELECT id, %s FROM zoo) s", strings.Join(exprs, ", ")))
}

// zooDiff lists every stored value that differs from what the target
// makes of PostgreSQL's rendering, as same compares them.
func zooDiff(want map[string]map[string]any, rows []map[string]any, same func(c zooColumn, want, got any) bool) []string {
	var problems []string
	got := map[string]map[string]any{}
	for _, r := range rows {
		got[fmt.Sprint(r["id"])] = r
	}
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			problems = append(problems, "missing id "+id)
			continue
		}
		for _, c := range zooColumns {
			if wv, gv := w[c.name], g[c.name]; !same(c, wv, gv) {
				problems = append(problems, fmt.Sprintf("id %s: %s (%s): PostgreSQL %s, target %s", id, c.name, c.typ, abbreviate(wv), abbreviate(gv)))
			}
		}
	}
	if len(got) != len(want) {
		problems = append(problems, fmt.Sprintf("the target has %d rows, PostgreSQL %d", len(got), len(want)))
	}
	sort.Strings(problems)
	return problems
}

// sameFeishu: the Feishu column holds PostgreSQL's rendering exactly.
func sameFeishu(_ zooColumn, want, got any) bool { return reflect.DeepEqual(want, got) }

func waitZoo(t *testing.T, conn *pgx.Conn, r *run, phase string, diff func(want map[string]map[string]any) []string) {
	t.Helper()
	ctx := context.Background()
	var problems []string
	for start := time.Now(); time.Since(start) < 2*time.Minute; time.Sleep(300 * time.Millisecond) {
		want, err := zooWant(ctx, conn)
		require.NoError(t, err)
		if problems = diff(want); len(problems) == 0 {
			return
		}
		if err := r.exited(); err != nil {
			break
		}
	}
	t.Fatalf("%s: the target table differs from PostgreSQL in %d values:\n  %s", phase, len(problems), strings.Join(problems, "\n  "))
}

// zooRun starts the daemon mirroring public.zoo into the target described
// by targetYAML (a targets entry named zt, reading its credential from
// secretVar), and waits until it streams.
func zooRun(t *testing.T, src database, targetYAML, table, secretVar, secret string) (*run, string) {
	t.Helper()
	stateDir := t.TempDir()
	yaml := fmt.Sprintf(`
source: {dsn: %q, slot: %s, publication: %s, status_interval: 1s}
state: {dir: %q}
pipeline: {flush_interval: 200ms, shutdown_timeout: 10s}
http: {listen: 127.0.0.1:0}
targets:
  zt: %s
mappings:
  - {source: public.zoo, target: zt, table: %s}
`, src.dsn, src.name, src.name, stateDir, targetYAML, table)
	cfg, err := config.Parse("zoo.yaml", []byte(yaml), func(name string) (string, bool) { return secret, name == secretVar })
	require.NoError(t, err)
	logger, _ := daemonLogger(t)
	d := startRun(t, cfg, logger)
	waitStreaming(t, src, d.exited, time.Minute)
	return d, stateDir
}

// zooSource is the test's database with the zoo table, and a connection
// in the daemon's session settings (UTC, ISO dates) to read PostgreSQL's
// renderings with: the database's own defaults (Asia/Shanghai, SQL dates)
// must not matter, and the forms are documented in those settings.
func zooSource(t *testing.T) (database, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	src := newDatabase(t, "Asia/Shanghai")
	_, err := src.db.Exec(ctx, zooSchema())
	require.NoError(t, err)
	types := map[string]bool{}
	for _, c := range zooColumns {
		types[c.typ] = true
	}
	require.GreaterOrEqual(t, len(types), 50)
	conn, err := replication.ConnectSQL(ctx, src.dsn)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return src, conn
}

// zooChanges runs the streamed part of a zoo test: inserts with the second
// and first values, updates to the other values, and an update of every
// column to NULL, waiting after the inserts and after the updates.
func zooChanges(t *testing.T, db *pgx.Conn, wait func(phase string)) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, zooRow(ctx, db, 3, 1, false))
	require.NoError(t, zooRow(ctx, db, 4, 0, false))
	wait("after streamed inserts")
	require.NoError(t, zooRow(ctx, db, 1, 2, true))
	require.NoError(t, zooRow(ctx, db, 2, 1, true))
	require.NoError(t, zooRow(ctx, db, 3, 0, true))
	require.NoError(t, zooRow(ctx, db, 4, -1, true))
	wait("after streamed updates")
	var nulls int
	require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM zoo WHERE c_int4 IS NULL AND c_composite_arr IS NULL").Scan(&nulls))
	require.Equal(t, 1, nulls)
}

// TestTypeZooFeishu mirrors a table with a column of each of more than 50
// PostgreSQL types (built-in scalars, ranges, geometric and network types,
// an enum, domains, a composite, and arrays of most of them, 2-D ones too)
// into the fake Feishu, and compares every value with PostgreSQL's own
// rendering of the documented form (docs/types.md), after the snapshot and
// after streamed inserts, updates and updates to NULL. The values include
// the edges: NaN and infinities (also in arrays), BC and year-10000 dates
// and timestamps, jsonb numbers beyond float64, bytea and inet arrays.
func TestTypeZooFeishu(t *testing.T) {
	ctx := context.Background()
	src, conn := zooSource(t)
	// Snapshot: row 1 with the first values, row 2 with the third.
	require.NoError(t, zooRow(ctx, src.db, 1, 0, false))
	require.NoError(t, zooRow(ctx, src.db, 2, 2, false))

	fake := feishufake.New(feishufake.Options{RequestsPerSecond: -1})
	t.Cleanup(fake.Close)
	cols := []feishufake.Column{{Name: "id", DataType: "bigint", IsPrimaryKey: true}}
	for _, c := range zooColumns {
		cols = append(cols, feishufake.Column{Name: c.name, DataType: c.feishuType, AllowNull: true})
	}
	require.NoError(t, fake.AddTable("zoo", cols))

	d, stateDir := zooRun(t, src, fmt.Sprintf(`{type: feishu, base_url: %s, workspace_id: workspace_fake, user_access_token: "${%s}", requests_per_second: 50}`, fake.URL(), tokenVar),
		"zoo", tokenVar, fake.AccessToken())
	diff := func(want map[string]map[string]any) []string { return zooDiff(want, fake.Rows("zoo"), sameFeishu) }
	waitZoo(t, conn, d, "after the snapshot", diff)
	zooChanges(t, src.db, func(phase string) { waitZoo(t, conn, d, phase, diff) })
	require.NoError(t, d.stop(30*time.Second))
	requireNoDeadLetters(t, stateDir)
}

// TestTypeZooGPTBots mirrors the same zoo into the fake GPTBots: integers
// into INT fields, exact numbers into FLOAT, booleans into BOOLEAN, finite
// dates and timestamps into DATETIME, and everything else into TEXT, where
// a JSON value (an array, a json document) arrives as its JSON text.
func TestTypeZooGPTBots(t *testing.T) {
	ctx := context.Background()
	src, conn := zooSource(t)
	require.NoError(t, zooRow(ctx, src.db, 1, 0, false))
	require.NoError(t, zooRow(ctx, src.db, 2, 2, false))

	const tableID, apiKey = "tbl_zoo", "zoo-api-key"
	fake := gptbotsfake.New(gptbotsfake.Options{APIKey: apiKey, RequestsPerSecond: -1})
	t.Cleanup(fake.Close)
	fields := []gptbotsfake.Field{{Name: "id", Type: gptbotsfake.TypeInt, Unique: true}}
	for _, c := range zooColumns {
		fields = append(fields, gptbotsfake.Field{Name: c.name, Type: c.gptbots()})
	}
	require.NoError(t, fake.AddTable(tableID, fields))

	d, stateDir := zooRun(t, src, fmt.Sprintf(`{type: gptbots, base_url: %s, api_key: "${%s}", requests_per_second: 50, timezone: UTC}`, fake.URL(), gbKeyVar),
		tableID, gbKeyVar, apiKey)
	diff := func(want map[string]map[string]any) []string { return zooDiff(want, fake.Rows(tableID), sameGPTBots) }
	waitZoo(t, conn, d, "after the snapshot", diff)
	zooChanges(t, src.db, func(phase string) { waitZoo(t, conn, d, phase, diff) })
	require.NoError(t, d.stop(30*time.Second))
	requireNoDeadLetters(t, stateDir)
}

func (c zooColumn) gptbots() string {
	if c.gptbotsType == "" {
		return gptbotsfake.TypeText
	}
	return c.gptbotsType
}

// sameGPTBots compares PostgreSQL's rendering (json decoded with numbers as
// json.Number) with the fake's stored value (int64, json.Number, bool or
// string). A TEXT field holds a JSON document's (json, jsonb, an array's)
// JSON text, and any other value's text.
func sameGPTBots(c zooColumn, want, got any) bool {
	if want == nil || got == nil {
		return want == nil && got == nil
	}
	switch c.gptbots() {
	case gptbotsfake.TypeInt:
		n, ok := want.(json.Number)
		return ok && fmt.Sprint(got) == n.String()
	case gptbotsfake.TypeDateTime:
		s, _ := want.(string)
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", time.DateOnly} {
			if at, err := time.Parse(layout, s); err == nil {
				return at.UTC().Format(time.DateTime) == got
			}
		}
		return false
	case gptbotsfake.TypeText:
		if s, ok := want.(string); ok && c.feishuType != "jsonb" {
			return s == got
		}
		text, ok := got.(string)
		if !ok {
			return false
		}
		doc, err := decodeJSON(text)
		return err == nil && reflect.DeepEqual(want, doc)
	}
	return reflect.DeepEqual(want, got)
}
