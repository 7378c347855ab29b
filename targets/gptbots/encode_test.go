package gptbots

import (
	"strings"
	"testing"
	"time"

	"github.com/replicator-cdc/replicator"
)

func TestEncodeValue(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	val := func(k replicator.Kind, raw string) replicator.Value {
		return replicator.Value{Kind: k, Raw: []byte(raw)}
	}
	const no = "!" // rejected
	types := [...]string{typeText, typeInt, typeFloat, typeBoolean, typeDateTime}
	for _, tc := range []struct {
		v    replicator.Value
		want [len(types)]string // by types
	}{
		{replicator.Null, [...]string{"null", "null", "null", "null", "null"}},
		{val(replicator.KindInt, "-12"), [...]string{`"-12"`, "-12", "-12", no, no}},
		{val(replicator.KindInt, "9007199254740993"), [...]string{`"9007199254740993"`, "9007199254740993", "9007199254740993", no, no}},
		{val(replicator.KindInt, "007"), [...]string{`"007"`, no, no, no, no}},
		{val(replicator.KindNumeric, "3.14159265358979323846"), [...]string{`"3.14159265358979323846"`, no, "3.14159265358979323846", no, no}},
		{val(replicator.KindNumeric, "-42.000"), [...]string{`"-42.000"`, "-42", "-42.000", no, no}},
		{val(replicator.KindNumeric, "NaN"), [...]string{`"NaN"`, no, no, no, no}},
		{val(replicator.KindFloat, "1e+100"), [...]string{`"1e+100"`, "1" + strings.Repeat("0", 100), "1e+100", no, no}},
		{val(replicator.KindFloat, "1.5"), [...]string{`"1.5"`, no, "1.5", no, no}},
		{val(replicator.KindFloat, "-Infinity"), [...]string{`"-Infinity"`, no, no, no, no}},
		{val(replicator.KindBool, "true"), [...]string{`"true"`, no, no, "true", no}},
		{val(replicator.KindText, "héllo \"q\"\n"), [...]string{`"héllo \"q\"\n"`, no, no, no, no}},
		{val(replicator.KindText, "42"), [...]string{`"42"`, no, no, no, no}},
		{val(replicator.KindTimestampTZ, "2024-01-02T03:04:05.987654+00:00"), [...]string{`"2024-01-02T03:04:05.987654+00:00"`, no, no, no, `"2024-01-02 11:04:05"`}},
		{val(replicator.KindTimestampTZ, "2024-12-31T20:00:00-05:00"), [...]string{`"2024-12-31T20:00:00-05:00"`, no, no, no, `"2025-01-01 09:00:00"`}},
		{val(replicator.KindTimestamp, "2024-01-02T03:04:05.999999"), [...]string{`"2024-01-02T03:04:05.999999"`, no, no, no, `"2024-01-02 03:04:05"`}},
		{val(replicator.KindDate, "2024-01-02"), [...]string{`"2024-01-02"`, no, no, no, `"2024-01-02 00:00:00"`}},
		{val(replicator.KindTime, "03:04:05+02"), [...]string{`"03:04:05+02"`, no, no, no, no}},
		{val(replicator.KindJSON, `{"a":[1,"x"]}`), [...]string{`"{\"a\":[1,\"x\"]}"`, no, no, no, no}},
		{val(replicator.KindJSON, `[1,2]`), [...]string{`"[1,2]"`, no, no, no, no}},
		{val(replicator.KindBytes, `\x00ff`), [...]string{`"\\x00ff"`, no, no, no, no}},
	} {
		for i, typ := range types {
			got, err := encodeValue(nil, tc.v, typ, shanghai)
			switch {
			case tc.want[i] == no && err == nil:
				t.Errorf("%s %q → %s: got %s, want rejection", tc.v.Kind, tc.v.Raw, typ, got)
			case tc.want[i] == no && !strings.Contains(err.Error(), tc.v.Kind.String()):
				t.Errorf("%s %q → %s: reason %q does not name the kind", tc.v.Kind, tc.v.Raw, typ, err)
			case tc.want[i] != no && (err != nil || string(got) != tc.want[i]):
				t.Errorf("%s %q → %s: got %s, %v; want %s", tc.v.Kind, tc.v.Raw, typ, got, err, tc.want[i])
			}
		}
	}
}

func TestDateTimeZones(t *testing.T) {
	v := replicator.Value{Kind: replicator.KindTimestampTZ, Raw: []byte("2024-07-01T00:30:00.5+02:00")}
	for _, tc := range []struct{ zone, want string }{
		{"UTC", `"2024-06-30 22:30:00"`},
		{"Asia/Shanghai", `"2024-07-01 06:30:00"`},
		{"America/New_York", `"2024-06-30 18:30:00"`},
	} {
		loc, err := time.LoadLocation(tc.zone)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := encodeValue(nil, v, typeDateTime, loc); err != nil || string(got) != tc.want {
			t.Errorf("%s: got %s, %v; want %s", tc.zone, got, err, tc.want)
		}
	}
	naive := replicator.Value{Kind: replicator.KindTimestamp, Raw: []byte("2024-07-01T00:30:00")}
	loc, _ := time.LoadLocation("Asia/Shanghai")
	if got, _ := encodeValue(nil, naive, typeDateTime, loc); string(got) != `"2024-07-01 00:30:00"` {
		t.Errorf("a zoneless timestamp moved: %s", got)
	}
}

// keyText reads a filter value the way the API's answers echo it; its fast
// paths agree with decoding the JSON.
func TestKeyTextMatchesDecoding(t *testing.T) {
	for raw, want := range map[string]string{
		`"abc"`: "abc", `"a\"b"`: `a"b`, `"\u00e9"`: "é", `"\ufffd"`: "\ufffd", `""`: "",
		`12`: "12", `1.50`: "1.50", `-3e5`: "-3e5", `true`: "true", `null`: "null", `"`: `"`,
	} {
		if got := keyText([]byte(raw)); got != want {
			t.Errorf("keyText(%s) = %q, want %q", raw, got, want)
		}
	}
}
