package app

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSameValue(t *testing.T) {
	n := func(s string) json.Number { return json.Number(s) }
	obj := func(s string) any {
		var v any
		if err := decodeNumbers(s, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name string
		a, b any
		want bool
	}{
		{"nulls", nil, nil, true},
		{"null and empty text", nil, "", false},
		{"value and null", "x", nil, false},
		{"same number", n("12"), n("12"), true},
		{"numbers by value", n("1.50"), n("1.5"), true},
		{"exact big numbers", n("12345678901234567890.123456789"), n("12345678901234567890.123456788"), false},
		{"number and its text", n("42"), "42", true},
		{"text and a number", "42", n("42.0"), true},
		{"number and other text", n("42"), "forty-two", false},
		{"bools", true, true, true},
		{"bool and its text", false, "false", true},
		{"bool differs", true, false, false},
		{"same text", "a b", "a b", true},
		{"text differs", "a", "A", false},
		{"instant in another offset", "2024-01-02T03:04:05.123456+00:00", "2024-01-02T05:04:05.123456+02:00", true},
		{"instant differs by a microsecond", "2024-01-02T03:04:05.123456+00:00", "2024-01-02T03:04:05.123457+00:00", false},
		{"GPTBots DATETIME without zone", "2024-01-02 03:04:05", "2024-01-02 03:04:05", true},
		{"zoneless against UTC", "2024-01-02T03:04:05", "2024-01-02 03:04:05", true},
		{"dates", "2024-01-02", "2024-01-02", true},
		{"dates differ", "2024-01-02", "2024-01-03", false},
		{"json documents", obj(`{"a":[1,2.50,{"b":null}]}`), obj(`{"a":[1,2.5,{"b":null}]}`), true},
		{"json differs", obj(`{"a":1}`), obj(`{"a":2}`), false},
		{"json key missing", obj(`{"a":1,"b":null}`), obj(`{"a":1}`), false},
		{"json and its text", obj(`[1,"x"]`), `[1, "x"]`, true},
		{"text holding json", `{"a":1}`, obj(`{"a":1}`), true},
		{"array length", obj(`[1]`), obj(`[1,1]`), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := sameValue(c.a, c.b); got != c.want {
				t.Errorf("sameValue(%#v, %#v) = %v, want %v", c.a, c.b, got, c.want)
			}
		})
	}
}

func TestTargetKey(t *testing.T) {
	key := []string{"a", "b"}
	same := [][2]map[string]any{
		{{"a": json.Number("1"), "b": "x"}, {"a": json.Number("1.0"), "b": "x", "other": 1}},
		{{"a": json.Number("7"), "b": nil}, {"a": "7", "b": nil}},
	}
	for _, p := range same {
		if targetKey(key, p[0]) != targetKey(key, p[1]) {
			t.Errorf("keys of %v and %v differ", p[0], p[1])
		}
	}
	differ := [][2]map[string]any{
		{{"a": "1:2", "b": "3"}, {"a": "1", "b": "2:3"}},
		{{"a": "", "b": nil}, {"a": nil, "b": ""}},
		{{"a": "012", "b": "x"}, {"a": json.Number("12"), "b": "x"}},
	}
	for _, p := range differ {
		if targetKey(key, p[0]) == targetKey(key, p[1]) {
			t.Errorf("keys of %v and %v are equal", p[0], p[1])
		}
	}
}

func decodeNumbers(s string, v any) error {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	return d.Decode(v)
}
