package mapping

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func arrayOf(c class) *valueType {
	return &valueType{class: classArray, elem: &valueType{class: c}, delim: ','}
}

func TestArrayTranscode(t *testing.T) {
	box := &valueType{class: classArray, elem: &valueType{class: classText}, delim: ';'}
	intArrays := &valueType{class: classArray, elem: arrayOf(classInt), delim: ','}
	tests := []struct {
		name string
		typ  *valueType
		in   string
		want string
	}{
		{"empty", arrayOf(classInt), `{}`, `[]`},
		{"int with NULL", arrayOf(classInt), `{1,-2,NULL,9223372036854775807}`, `[1,-2,null,9223372036854775807]`},
		{"2-D kept", arrayOf(classInt), `{{1,2},{3,4}}`, `[[1,2],[3,4]]`},
		{"3-D kept", arrayOf(classInt), `{{{1},{2}},{{3},{4}}}`, `[[[1],[2]],[[3],[4]]]`},
		{"lower bounds dropped", arrayOf(classInt), `[0:1]={7,8}`, `[7,8]`},
		{"2-D lower bounds dropped", arrayOf(classInt), `[0:1][-1:0]={{1,2},{3,4}}`, `[[1,2],[3,4]]`},
		{"numeric exact, specials as strings", arrayOf(classNumeric), `{1.50,NaN,Infinity,-Infinity,12345678901234567890.123456789,-0.000001}`,
			`[1.50,"NaN","Infinity","-Infinity",12345678901234567890.123456789,-0.000001]`},
		{"float specials as strings", arrayOf(classFloat), `{NaN,Infinity,-Infinity,1.5e+300,-0,1e-05,3.4028235e+38}`,
			`["NaN","Infinity","-Infinity",1.5e+300,-0,1e-05,3.4028235e+38]`},
		{"bool", arrayOf(classBool), `{t,f,NULL}`, `[true,false,null]`},
		{"jsonb verbatim: big and huge numbers", arrayOf(classJSON), `{"{\"a\": 1e400, \"b\": 12345678901234567890}","[1, 2.50]",NULL,"\"s\""}`,
			`[{"a": 1e400, "b": 12345678901234567890},[1, 2.50],null,"s"]`},
		{"json keeps key order and duplicates", arrayOf(classJSON), `{"{\"b\":1,\"a\":2,\"b\":3}"}`, `[{"b":1,"a":2,"b":3}]`},
		{"bytea hex", arrayOf(classBytea), `{"\\x0102ff",NULL,"\\x"}`, `["\\x0102ff",null,"\\x"]`},
		{"date forms", arrayOf(classDate), `{2024-01-02,"0044-03-15 BC",10000-01-01,infinity,-infinity}`,
			`["2024-01-02","0044-03-15 BC","10000-01-01","infinity","-infinity"]`},
		{"timestamptz as RFC 3339, other forms as text", arrayOf(classTimestampTZ),
			`{"2024-01-02 03:04:05.123456+00","0044-03-15 12:00:00+00 BC","10000-01-01 00:00:00+00",infinity,-infinity}`,
			`["2024-01-02T03:04:05.123456+00:00","0044-03-15 12:00:00+00 BC","10000-01-01 00:00:00+00","infinity","-infinity"]`},
		{"timestamp as ISO", arrayOf(classTimestamp), `{"2024-01-02 03:04:05","1999-12-31 23:59:59.5"}`, `["2024-01-02T03:04:05","1999-12-31T23:59:59.5"]`},
		{"uuid as text", arrayOf(classText), `{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}`, `["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]`},
		{"interval as text", arrayOf(classText), `{"1 year 2 mons","-00:00:01"}`, `["1 year 2 mons","-00:00:01"]`},
		{"time as text", arrayOf(classTime), `{03:04:05.123456,24:00:00}`, `["03:04:05.123456","24:00:00"]`},
		{"inet keeps its form", arrayOf(classText), `{192.168.0.1,10.0.0.0/8,::1}`, `["192.168.0.1","10.0.0.0/8","::1"]`},
		{"ranges as text", arrayOf(classText), `{"[1,5)","(,)",empty}`, `["[1,5)","(,)","empty"]`},
		{"tsrange with quotes", arrayOf(classText), `{"[\"2024-01-01 00:00:00\",\"2024-01-02 00:00:00\")"}`,
			`["[\"2024-01-01 00:00:00\",\"2024-01-02 00:00:00\")"]`},
		{"quoted NULL is text", arrayOf(classText), `{"NULL",NULL,null,"null"}`, `["NULL",null,null,"null"]`},
		{"text escapes", arrayOf(classText), `{"a\\b","c\"d","e,f"," padded ","",多语言,"\\\\"}`,
			`["a\\b","c\"d","e,f"," padded ","","多语言","\\\\"]`},
		{"text control characters", arrayOf(classText), "{\"line\nbreak\ttab\"}", `["line\nbreak\ttab"]`},
		{"box uses ';'", box, `{(1,1),(0,0);(2,2),(1,1)}`, `["(1,1),(0,0)","(2,2),(1,1)"]`},
		{"money as numbers", arrayOf(classMoney), `{$1.00,"-$1,234.56","($0.50)"}`, `[1.00,-1234.56,-0.50]`},
		{"array elements (domain over an array)", intArrays, `{"{1,2}","{{3}}",NULL}`, `[[1,2],[[3]],null]`},
		{"composite elements as text", arrayOf(classText), `{"(1,\"a b\")","(2,)"}`, `["(1,\"a b\")","(2,)"]`},
		{"spaces around elements", arrayOf(classInt), `{ 1 , 2 }`, `[1,2]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := encoder{t: tt.typ}
			v, err := e.encode(nil, []byte(tt.in))
			require.NoError(t, err)
			require.Equal(t, tt.want, string(v.Raw))
			require.True(t, json.Valid(v.Raw))
		})
	}
}

func TestArrayTranscodeRejects(t *testing.T) {
	tests := []struct {
		name string
		typ  *valueType
		in   string
	}{
		{"unclosed", arrayOf(classInt), `{1,2`},
		{"empty element", arrayOf(classInt), `{1,,2}`},
		{"no brace", arrayOf(classInt), `1,2}`},
		{"junk after", arrayOf(classInt), `{1}x`},
		{"unclosed quote", arrayOf(classText), `{"a}`},
		{"not an integer", arrayOf(classInt), `{a}`},
		{"not a number", arrayOf(classFloat), `{1.2.3}`},
		{"not a boolean", arrayOf(classBool), `{yes}`},
		{"not JSON", arrayOf(classJSON), `{"{a}"}`},
		{"dimensions without =", arrayOf(classInt), `[1:2]{1,2}`},
		{"trailing backslash", arrayOf(classText), `{a\`},
		{"money in another locale", arrayOf(classMoney), `{"1.234,56 €"}`},
		{"too deep", arrayOf(classInt), strings.Repeat("{", 40) + strings.Repeat("}", 40)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := encoder{t: tt.typ}
			_, err := e.encode(nil, []byte(tt.in))
			require.Error(t, err)
		})
	}
}

var fuzzClasses = []class{classInt, classNumeric, classFloat, classMoney, classBool, classJSON, classBytea,
	classDate, classTimestamp, classTimestampTZ, classTime, classText}

func FuzzArrayTranscode(f *testing.F) {
	seeds := []string{`{}`, `{1,2,NULL}`, `{{1,2},{3,4}}`, `[0:1]={7,8}`, `{"a\\b","c\"d"}`, `{NaN,Infinity}`,
		`{"{\"a\": 1e400}"}`, `{"2024-01-02 03:04:05+00"}`, `{$1.00,"($2.00)"}`, `{t,f}`, `{a\`, `{"`, `{{`, `{1}}`,
		`{"\\x01"}`, `{ 1 , 2 }`, `[1:1]=`, `{(1,1),(0,0);(2,2),(1,1)}`}
	for i, s := range seeds {
		f.Add(s, uint8(i))
	}
	f.Fuzz(func(t *testing.T, in string, sel uint8) {
		typ := arrayOf(fuzzClasses[int(sel)%len(fuzzClasses)])
		if sel >= 128 {
			typ.delim = ';'
		}
		out, err := appendArray(nil, []byte(in), typ.elem, typ.delim)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("%q as %d gave invalid JSON %q", in, typ.elem.class, out)
		}
	})
}

// BenchmarkEncodeArray transcodes a typical mixed set of arrays: ints, a
// 2-D int array, text with escapes, timestamptz and jsonb.
func BenchmarkEncodeArray(b *testing.B) {
	cases := []struct {
		typ *valueType
		in  []byte
	}{
		{arrayOf(classInt), []byte(`{1,22,333,4444,55555,666666,7777777,88888888,NULL,-1}`)},
		{arrayOf(classInt), []byte(`{{1,2,3},{4,5,6},{7,8,9}}`)},
		{arrayOf(classText), []byte(`{alpha,"beta gamma","with \"quotes\"",NULL,多语言}`)},
		{arrayOf(classTimestampTZ), []byte(`{"2024-01-02 03:04:05.123456+00","2025-06-07 08:09:10+00"}`)},
		{arrayOf(classJSON), []byte(`{"{\"a\": 1, \"b\": [1, 2]}","{}"}`)},
		{arrayOf(classBytea), []byte(`{"\\x0102",NULL,"\\xdeadbeef"}`)},
	}
	var bytes int64
	for _, c := range cases {
		bytes += int64(len(c.in))
	}
	b.SetBytes(bytes)
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range cases {
			e := encoder{t: c.typ}
			if _, err := e.encode(nil, c.in); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkEncodeScalars encodes one cell of each common scalar type.
func BenchmarkEncodeScalars(b *testing.B) {
	cases := []struct {
		c  class
		in []byte
	}{
		{classInt, []byte("9007199254740993")},
		{classNumeric, []byte("12345.678")},
		{classFloat, []byte("1.5e+300")},
		{classBool, []byte("t")},
		{classText, []byte("some text")},
		{classJSON, []byte(`{"a": 1}`)},
		{classDate, []byte("2024-01-02")},
		{classTimestampTZ, []byte("2024-01-02 03:04:05.123456+00")},
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range cases {
			e := encoder{t: &valueType{class: c.c}}
			if _, err := e.encode(nil, c.in); err != nil {
				b.Fatal(err)
			}
		}
	}
}
