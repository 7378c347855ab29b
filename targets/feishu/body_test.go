package feishu

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/replicator-cdc/replicator"
)

// referenceBody is the body as first built: the document, then escaped as
// a JSON string. appendUpsertBody must produce the same bytes in one pass.
func referenceBody(recs []replicator.Record) []byte {
	inner := []byte{'['}
	for i := range recs {
		if i > 0 {
			inner = append(inner, ',')
		}
		inner = append(inner, '{')
		for j, f := range recs[i].Fields {
			if j > 0 {
				inner = append(inner, ',')
			}
			inner = replicator.AppendJSONString(inner, []byte(f.Name))
			inner = append(inner, ':')
			inner = replicator.AppendJSON(inner, f.Value)
		}
		inner = append(inner, '}')
	}
	inner = append(inner, ']')
	out := append([]byte(`{"records":`), replicator.AppendJSONString(nil, inner)...)
	return append(out, '}')
}

var bodySeeds = []struct {
	kind replicator.Kind
	raw  string
}{
	{replicator.KindText, "plain"},
	{replicator.KindText, `quote " and backslash \ and \"both\"`},
	{replicator.KindText, "newline\n return\r tab\t bell\x07 nul\x00 unit\x1f"},
	{replicator.KindText, "invalid \xff\xfe utf-8 \xc3"},
	{replicator.KindText, "line sep \u2028 para sep \u2029 emoji 😀 中文"},
	{replicator.KindText, ""},
	{replicator.KindInt, "-9223372036854775808"},
	{replicator.KindNumeric, "12345678901234567890.000000000001"},
	{replicator.KindNumeric, "NaN"},
	{replicator.KindFloat, "-Infinity"},
	{replicator.KindBool, "true"},
	{replicator.KindJSON, `{"a": "x\"y\\z\n", "b": [1, 2.5, null]}`},
	{replicator.KindJSON, "[\"\u2028\"]"},
	{replicator.KindTimestampTZ, "2024-01-02T03:04:05.123456+08:00"},
	{replicator.KindBytes, `\x00ff`},
	{replicator.KindNull, ""},
}

func bodyRecords(kind replicator.Kind, raw, name string) []replicator.Record {
	v := replicator.Value{Kind: kind, Raw: []byte(raw)}
	return []replicator.Record{
		{Op: replicator.OpUpsert, Fields: []replicator.Field{{Name: "id", Value: replicator.Value{Kind: replicator.KindInt, Raw: []byte("1")}}, {Name: name, Value: v}}},
		{Op: replicator.OpUpsert, Fields: []replicator.Field{{Name: "id", Value: replicator.Value{Kind: replicator.KindInt, Raw: []byte("2")}}, {Name: name, Value: v}}},
	}
}

func TestUpsertBodyEqualsTwoPassEncoding(t *testing.T) {
	for _, s := range bodySeeds {
		recs := bodyRecords(s.kind, s.raw, `col "x"`)
		got, want := appendUpsertBody(nil, recs), referenceBody(recs)
		if !bytes.Equal(got, want) {
			t.Errorf("%v %q:\n got %s\nwant %s", s.kind, s.raw, got, want)
		}
	}
}

// FuzzUpsertBody checks the one-pass body against the two-pass one for any
// value and column name, and that the API can read it back as JSON.
func FuzzUpsertBody(f *testing.F) {
	for _, s := range bodySeeds {
		f.Add(uint8(s.kind), s.raw, "name")
	}
	f.Fuzz(func(t *testing.T, kind uint8, raw, name string) {
		recs := bodyRecords(replicator.Kind(kind%uint8(replicator.KindBytes+1)), raw, name)
		got, want := appendUpsertBody(nil, recs), referenceBody(recs)
		if !bytes.Equal(got, want) {
			t.Fatalf("got %s\nwant %s", got, want)
		}
		var outer struct{ Records string }
		if err := json.Unmarshal(got, &outer); err != nil {
			t.Fatalf("body is not JSON: %v", err)
		}
	})
}
