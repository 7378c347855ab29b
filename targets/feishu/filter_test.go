package feishu

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

func textKey(name, v string) replicator.Field {
	return field(name, val(replicator.KindText, v))
}

// viaURL carries a filter the way the writer sends it and the API receives
// it: url.Values encodes it, the server decodes the query once.
func viaURL(t testing.TB, filter string) string {
	t.Helper()
	q, err := url.ParseQuery(url.Values{"filter": {filter}}.Encode())
	require.NoError(t, err)
	return q.Get("filter")
}

// decoys are values a filter for v must not select: what v turns into when
// decoded once more, and near misses.
func decoys(v string) []string {
	out := []string{"A", "B", v + "x", "x" + v, strings.ReplaceAll(v, "+", " "), strings.ToUpper(v), strings.ToLower(v)}
	if d, err := url.QueryUnescape(v); err == nil {
		out = append(out, d)
	}
	if len(v) > 0 {
		out = append(out, v[:len(v)-1], v[1:])
	}
	return slices.DeleteFunc(out, func(d string) bool { return d == v })
}

func TestDeleteFilterEncoding(t *testing.T) {
	cases := []struct{ key, want string }{
		{"%41", `k=in.("%2541")`},
		{"%42", `k=in.("%2542")`},
		{"a&b", `k=in.("a%26b")`},
		{"x=y", `k=in.("x%3Dy")`},
		{"p+q", `k=in.("p%2Bq")`},
		{"two  spaces", `k=in.("two%20%20spaces")`},
		{`q"uote`, `k=in.("q%5C%22uote")`},
		{`back\slash`, `k=in.("back%5C%5Cslash")`},
		{"a,b", `k=in.("a%2Cb")`},
		{"(x)", `k=in.("%28x%29")`},
		{"1.5", `k=in.("1.5")`},
		{"a.eq.b", `k=in.("a.eq.b")`},
		{"null", `k=in.("null")`},
		{"TRUE", `k=in.("TRUE")`},
		{"日本", `k=in.("%E6%97%A5%E6%9C%AC")`},
		{"", `k=in.("")`},
		{"#;~", `k=in.("%23%3B~")`},
		{"-12", `k=in.(-12)`},
		{"abc_D", `k=in.(abc_D)`},
	}
	for _, c := range cases {
		f := deleteFilter([]string{"k"}, []replicator.Record{deleteRec(textKey("k", c.key))})
		assert.Equal(t, c.want, f, "key %q", c.key)
		rows := [][]string{{c.key}}
		for _, d := range decoys(c.key) {
			rows = append(rows, []string{d})
		}
		got, err := feishufake.SelectText(viaURL(t, f), []string{"k"}, rows)
		require.NoError(t, err, "key %q", c.key)
		assert.Equal(t, 0, slices.Index(got, true), "key %q selects itself", c.key)
		assert.Equal(t, 1, countTrue(got), "key %q selects only itself among %q", c.key, rows)
	}
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// FuzzDeleteFilter checks that a delete filter, sent through url.Values and
// read the way the API reads it, selects exactly the keys it was built for,
// for a single key column and a composite key, whatever bytes the keys
// hold. PostgreSQL text cannot hold NUL, so such keys are skipped; invalid
// UTF-8 is kept, since the encoding works on bytes.
func FuzzDeleteFilter(f *testing.F) {
	for _, s := range [][2]string{
		{"%41", "A"}, {"%42", "%"}, {"a&b", "x=y"}, {"p+q", "p q"}, {"", "null"}, {`"`, `\`}, {"a,b", "(c)"},
		{"日本", "\xff\xfe"}, {"%zz", "%2"}, {"&=&", "+%2B"}, {"1.5", "or=(a.eq.1)"}, {"\t\n", " "},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, k1, k2 string) {
		if strings.ContainsRune(k1, 0) || strings.ContainsRune(k2, 0) || k1 == k2 {
			t.Skip()
		}
		// Single key: delete k1 and k2.
		recs := []replicator.Record{deleteRec(textKey("k", k1)), deleteRec(textKey("k", k2))}
		filter := deleteFilter([]string{"k"}, recs)
		rows := [][]string{{k1}, {k2}}
		for _, d := range append(decoys(k1), decoys(k2)...) {
			if d != k1 && d != k2 {
				rows = append(rows, []string{d})
			}
		}
		got, err := feishufake.SelectText(viaURL(t, filter), []string{"k"}, rows)
		require.NoError(t, err, "filter %q", filter)
		want := make([]bool, len(rows))
		want[0], want[1] = true, true
		require.Equal(t, want, got, "filter %q over %q", filter, rows)
		require.Equal(t, len(url.QueryEscape(filter)), urlLen([]byte(filter)), "filter %q", filter)

		// Composite key (a, b): delete (k1, k2) only.
		recs = []replicator.Record{deleteRec(textKey("a", k1), textKey("b", k2))}
		filter = deleteFilter([]string{"a", "b"}, recs)
		rows = [][]string{{k1, k2}, {k2, k1}, {k1, k1}, {k2, k2}}
		for _, d := range decoys(k2) {
			rows = append(rows, []string{k1, d})
		}
		got, err = feishufake.SelectText(viaURL(t, filter), []string{"a", "b"}, rows)
		require.NoError(t, err, "filter %q", filter)
		want = make([]bool, len(rows))
		want[0] = true
		for i, r := range rows[1:] {
			want[i+1] = r[0] == k1 && r[1] == k2
		}
		require.Equal(t, want, got, "filter %q over %q", filter, rows)
		if utf8.ValidString(k1) && utf8.ValidString(k2) {
			require.True(t, utf8.ValidString(viaURL(t, filter)))
		}
	})
}

// TestDeleteKeysThatDecodeToOtherKeys deletes keys that, decoded once more,
// name other rows (%41 is A) or would be cut apart (&, =) or changed (+):
// exactly those rows go.
func TestDeleteKeysThatDecodeToOtherKeys(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	require.NoError(t, e.fake.AddTable("tags", []feishufake.Column{{Name: "code", DataType: "text", IsUnique: true}}))
	require.NoError(t, e.fake.AddTable("pairs", []feishufake.Column{
		{Name: "region", DataType: "text", IsPrimaryKey: true},
		{Name: "code", DataType: "text", IsPrimaryKey: true},
	}))
	single := replicator.TableSpec{Table: "tags", Key: []string{"code"}, Columns: []string{"code"}}
	composite := replicator.TableSpec{Table: "pairs", Key: []string{"region", "code"}, Columns: []string{"region", "code"}}
	all := []string{"A", "B", "%41", "%42", "a&b", "x=y", "p+q", "p q", "a"}
	gone := []string{"%41", "a&b", "x=y", "p+q"}
	w := e.writer()
	var ups, cups, dels, cdels []replicator.Record
	for _, v := range all {
		ups = append(ups, upsertRec(textKey("code", v)))
		k := []replicator.Field{textKey("region", "r&1"), textKey("code", v)}
		cups = append(cups, replicator.Record{Op: replicator.OpUpsert, Key: k, Fields: k})
	}
	for _, v := range gone {
		dels = append(dels, deleteRec(textKey("code", v)))
		cdels = append(cdels, deleteRec(textKey("region", "r&1"), textKey("code", v)))
	}
	e.write(w, single, ups...)
	e.write(w, composite, cups...)
	assert.Empty(t, e.write(w, single, dels...))
	assert.Empty(t, e.write(w, composite, cdels...))
	want := slices.DeleteFunc(slices.Clone(all), func(v string) bool { return slices.Contains(gone, v) })
	left := func(table string) []string {
		var out []string
		for _, r := range e.fake.Rows(table) {
			out = append(out, r["code"].(string))
		}
		return out
	}
	assert.ElementsMatch(t, want, left("tags"))
	assert.ElementsMatch(t, want, left("pairs"))
	assert.Equal(t, float64(len(gone)), counter(e.m.Rows, "lark", "tags", "delete"))
	assert.Len(t, e.requests(http.MethodDelete, "/records"), 2)
}

// TestDeleteFilterLengthCountsEncoding: keys that grow fivefold on the way
// (each '&' is %26 in the expression, %2526 in the URL) still keep every
// filter within the limit as sent.
func TestDeleteFilterLengthCountsEncoding(t *testing.T) {
	const limit = 1000
	spec := replicator.TableSpec{Table: "tags", Key: []string{"code"}}
	b := replicator.Batch{Table: spec}
	for i := range 40 {
		b.Records = append(b.Records, deleteRec(textKey("code", strings.Repeat("&", 30)+strconv.Itoa(i))))
	}
	jobs, rej := plan(&b, 500, limit)
	require.Empty(t, rej)
	total := 0
	for _, j := range jobs {
		sent := strings.TrimPrefix(url.Values{"filter": {deleteFilter(spec.Key, j.recs)}}.Encode(), "filter=")
		assert.LessOrEqual(t, len(sent), limit)
		total += len(j.recs)
	}
	assert.Equal(t, 40, total)
	assert.Greater(t, len(jobs), 5, "about six such keys fit in 1000 bytes, not 28")
}
