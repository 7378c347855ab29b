package replicator

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "ctl\x00\x1f\n\t", "\u2028\u2029", "bad\xff\xfeutf8", "中文"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendJSONString(nil, []byte(s))
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("invalid JSON %q for %q: %v", out, s, err)
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if utf8.ValidString(s) && back != s {
			t.Fatalf("round trip %q -> %q", s, back)
		}
		if !utf8.ValidString(s) && !utf8.ValidString(back) {
			t.Fatalf("invalid UTF-8 survived: %q (want like %q)", back, want)
		}
	})
}

func TestAppendJSONKinds(t *testing.T) {
	cases := map[string]Value{
		"null":              Null,
		"12":                {Kind: KindInt, Raw: []byte("12")},
		`"-Infinity"`:       {Kind: KindFloat, Raw: []byte("-Infinity")},
		"0.10":              {Kind: KindNumeric, Raw: []byte("0.10")},
		`{"a":1}`:           {Kind: KindJSON, Raw: []byte(`{"a":1}`)},
		`"2024-01-02"`:      {Kind: KindDate, Raw: []byte("2024-01-02")},
		`"\\x00ff"`:         {Kind: KindBytes, Raw: []byte(`\x00ff`)},
		`"line\u2028break"`: {Kind: KindText, Raw: []byte("line\u2028break")},
	}
	for want, v := range cases {
		if got := string(AppendJSON(nil, v)); got != want {
			t.Errorf("AppendJSON(%v %q) = %s, want %s", v.Kind, v.Raw, got, want)
		}
	}
}
