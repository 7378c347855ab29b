package feishufake

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFilter(t *testing.T) {
	cases := []struct {
		in   string
		want *node
	}{
		{`id=eq.5`, &node{op: "eq", col: "id", vals: []string{"5"}}},
		{`name=eq.a,b(c)`, &node{op: "eq", col: "name", vals: []string{"a,b(c)"}}},
		{`id=in.(1,2,3)`, &node{op: "in", col: "id", vals: []string{"1", "2", "3"}}},
		{`id=in.()`, &node{op: "in", col: "id", vals: []string{}}},
		{`n=in.("a,b","c\"d","e\\f",g h,"")`, &node{op: "in", col: "n", vals: []string{"a,b", `c"d`, `e\f`, "g h", ""}}},
		{`n=in.("x)(y","1.5","2024-01-02T03:04:05%2B00:00")`, &node{op: "in", col: "n", vals: []string{"x)(y", "1.5", "2024-01-02T03:04:05+00:00"}}},
		// The second decoding, as the API does it: percent escapes, '+' as
		// a space, '&' between parameters, the first '=' of each.
		{`k=in.(%41,"%25",a+b,"x%26y","p%2Bq")`, &node{op: "in", col: "k", vals: []string{"A", "%", "a b", "x&y", "p+q"}}},
		{`k=eq.a=b`, &node{op: "eq", col: "k", vals: []string{"a=b"}}},
		{`k=eq.a%3Db%26c`, &node{op: "eq", col: "k", vals: []string{"a=b&c"}}},
		{`%6B=in.(1)`, &node{op: "in", col: "k", vals: []string{"1"}}},
		{`or=(and(a.eq.%22x%2Cy%22))`, &node{op: "or", kids: []*node{
			{op: "and", kids: []*node{{op: "eq", col: "a", vals: []string{"x,y"}}}},
		}}},
		{`a=eq.1&b=in.(2)`, &node{op: "and", params: true, kids: []*node{
			{op: "eq", col: "a", vals: []string{"1"}},
			{op: "in", col: "b", vals: []string{"2"}},
		}}},
		{`flag=is.null`, &node{op: "is", col: "flag", vals: []string{"null"}}},
		{`or=(and(a.eq.1,b.eq.x),and(a.eq.2,b.eq."y,z"))`, &node{op: "or", kids: []*node{
			{op: "and", kids: []*node{{op: "eq", col: "a", vals: []string{"1"}}, {op: "eq", col: "b", vals: []string{"x"}}}},
			{op: "and", kids: []*node{{op: "eq", col: "a", vals: []string{"2"}}, {op: "eq", col: "b", vals: []string{"y,z"}}}},
		}}},
		{`and=(a.in.(1,2),b.neq.3,c.is.true)`, &node{op: "and", kids: []*node{
			{op: "in", col: "a", vals: []string{"1", "2"}},
			{op: "neq", col: "b", vals: []string{"3"}},
			{op: "is", col: "c", vals: []string{"true"}},
		}}},
		{`or=(a.eq.1.5,b.eq.日本)`, &node{op: "or", kids: []*node{
			{op: "eq", col: "a", vals: []string{"1.5"}},
			{op: "eq", col: "b", vals: []string{"日本"}},
		}}},
	}
	for _, c := range cases {
		got, err := parseFilter(c.in)
		if assert.NoError(t, err, c.in) {
			assert.Equal(t, c.want, got, c.in)
		}
	}
}

func TestParseFilterRejects(t *testing.T) {
	for _, in := range []string{
		``, `id`, `id=`, `id=eq`, `id=like.x`, `id=in.(1,2`, `id=in.1,2`, `id=in.("a)`, `id=in.("a"b)`,
		`id=in.(a"b)`, `id=in.(a(b)`, `id=in.(1))`, `or=(a.eq.1`, `or=()`, `or=(a.eq.1,)`, `or=(a.zz.1)`,
		`or=(and(a.eq.1)`, `id=is.maybe`, `=eq.1`, `or=(a.eq.1)x`, `id=in.("a\`,
		// Split on '&' and decoded once more: a raw '&' cuts a value, a bad
		// escape is an error, an encoded '=' cannot end a name.
		`id=in.("a&b")`, `id=in.(%zz)`, `id=in.(50%)`, `a=eq.1&`, `a=eq.1&&b=eq.2`, `k%3Din.(1)`, `id=in.("a%`,
	} {
		_, err := parseFilter(in)
		assert.Error(t, err, in)
	}
}

func TestFilterMatch(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	require.NoError(t, s.AddTable("t", []Column{
		{Name: "a", DataType: "bigint", AllowNull: true},
		{Name: "b", DataType: "text", AllowNull: true},
		{Name: "ok", DataType: "boolean", AllowNull: true},
	}))
	tb := s.tables["t"]
	r := &row{vals: make([]any, len(tb.cols))}
	r.vals[tb.pos["a"]], _ = parseText(kindInt64, "2")
	r.vals[tb.pos["b"]] = "y,z"
	for in, want := range map[string]bool{
		`a=eq.2`:     true,
		`a=eq.02`:    true,
		`a=in.(1,3)`: false,
		`a=in.("2")`: true,
		`b=eq.y,z`:   true,
		`or=(and(a.eq.1,b.eq.x),and(a.eq.2,b.eq."y,z"))`: true,
		`and=(a.eq.2,b.eq.y)`:                            false,
		`ok=is.null`:                                     true,
		`b=neq.q`:                                        true,
		`ok=is.true`:                                     false,
	} {
		n, err := parseFilter(in)
		require.NoError(t, err, in)
		c, err := tb.compile(n)
		require.NoError(t, err, in)
		assert.Equal(t, want, c.match(r), in)
	}
	for _, in := range []string{`zz=eq.1`, `a=eq.x`, `a=in.(1,1.5)`, `b=is.true`} {
		n, err := parseFilter(in)
		require.NoError(t, err, in)
		_, err = tb.compile(n)
		assert.Error(t, err, in)
	}
}

// FuzzFilter checks that the parser never panics and that whatever it
// accepts renders back to text that parses to the same tree.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		`id=eq.5`, `id=in.(1,2,3)`, `n=in.("a,b","c\"d","e\\f")`, `or=(and(a.eq.1,b.eq.x),and(a.eq.2,b.eq."y"))`,
		`flag=is.null`, `and=(a.in.(1,2),b.neq.3)`, `id=in.()`, `or=(a.eq."")`,
		`k=in.(%41,"%25",a+b)`, `a=eq.1&b=in.(2)`, `k=eq.a=b%26c`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseFilter(s)
		if err != nil {
			return
		}
		again, err := parseFilter(n.String())
		require.NoError(t, err, "rendered %q from %q", n.String(), s)
		require.Equal(t, n, again, "rendered %q from %q", n.String(), s)
	})
}
