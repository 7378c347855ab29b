package gptbotsfake

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestCoerce(t *testing.T) {
	n := func(s string) json.Number { return json.Number(s) }
	for _, tc := range []struct {
		typ  string
		in   any
		want any // nil with ok false means rejected
		ok   bool
	}{
		{TypeInt, n("42"), int64(42), true},
		{TypeInt, "-7", int64(-7), true},
		{TypeInt, n("9223372036854775807"), int64(9223372036854775807), true},
		{TypeInt, n("9223372036854775808"), nil, false},
		{TypeInt, n("1.5"), nil, false},
		{TypeInt, n("1.0"), nil, false},
		{TypeInt, "4x", nil, false},
		{TypeInt, true, nil, false},
		{TypeFloat, n("3.14159265358979323846"), n("3.14159265358979323846"), true},
		{TypeFloat, n("1e+100"), n("1e+100"), true},
		{TypeFloat, "2.5", n("2.5"), true},
		{TypeFloat, "-0.5e-3", n("-0.5e-3"), true},
		{TypeFloat, "NaN", nil, false},
		{TypeFloat, "Infinity", nil, false},
		{TypeFloat, "+1", nil, false},
		{TypeFloat, "01", nil, false},
		{TypeFloat, n("1e999"), nil, false},
		{TypeFloat, false, nil, false},
		{TypeBoolean, true, true, true},
		{TypeBoolean, "false", false, true},
		{TypeBoolean, "yes", nil, false},
		{TypeBoolean, n("1"), nil, false},
		{TypeDateTime, "2024-01-02 03:04:05", "2024-01-02 03:04:05", true},
		{TypeDateTime, "2024-01-02T03:04:05", nil, false},
		{TypeDateTime, "2024-01-02 03:04:05.123", nil, false},
		{TypeDateTime, "2024-01-02 3:04:05", nil, false},
		{TypeDateTime, "2024-01-02", nil, false},
		{TypeDateTime, "2024-02-30 00:00:00", nil, false},
		{TypeDateTime, n("1700000000000"), nil, false},
		{TypeText, "hello", "hello", true},
		{TypeText, n("12.50"), "12.50", true},
		{TypeText, true, nil, false},
		{TypeText, map[string]any{"a": n("1")}, nil, false},
		{TypeText, []any{"a"}, nil, false},
		{TypeInt, nil, nil, true},
		{TypeText, nil, nil, true},
	} {
		got, err := coerce(tc.typ, tc.in)
		if (err == nil) != tc.ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("coerce(%s, %#v) = %#v, %v; want %#v, ok %v", tc.typ, tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestUpdateFailDetail(t *testing.T) {
	s := newServer(t, Options{})
	s.SetReject(func(_, field string, v any) string {
		if str, ok := v.(string); ok && strings.Contains(str, "BAD") {
			return "value contains BAD in " + field
		}
		return ""
	})
	key := s.Options().APIKey
	if r := call(t, s, UpdatePath, key, upsert(byID("taken", map[string]any{"num": 7}))); r.body["success_count"] != json.Number("1") {
		t.Fatalf("seed: %v", r.body)
	}
	r := call(t, s, UpdatePath, key, upsert(
		byID("a", map[string]any{"name": "fine", "num": "1", "score": "1.25", "ok": "true", "at": "2024-05-06 07:08:09"}),
		byID("b", map[string]any{"nope": "x"}),
		byID("c", map[string]any{"num": "one"}),
		byID("d", map[string]any{"num": 7}),
		byID(strings.Repeat("é", MaxUniqueChars+1), map[string]any{"name": "long"}),
		byID("e", map[string]any{"name": "so BAD"}),
		byID("f", map[string]any{"at": "2024-05-06T07:08:09Z"}),
		byID("g", map[string]any{"name": 12.5}),
	))
	if r.status != http.StatusOK || r.code() != "" {
		t.Fatalf("got %d %v", r.status, r.body)
	}
	if r.body["totalCount"] != json.Number("8") || r.body["success_count"] != json.Number("2") || r.body["fail_count"] != json.Number("6") {
		t.Fatalf("counts: %v", r.body)
	}
	failed := map[string]string{}
	for _, d := range r.body["fail_detail"].([]any) {
		d := d.(map[string]any)
		data := d["upsert_data"].(map[string]any)
		if _, ok := data["value"].(map[string]any); !ok {
			t.Errorf("fail_detail without value: %v", d)
		}
		failed[data["filter"].(map[string]any)["id"].(string)] = d["fail_reason"].(string)
	}
	for _, id := range []string{"b", "c", "d", "e", "f", strings.Repeat("é", MaxUniqueChars+1)} {
		if failed[id] == "" {
			t.Errorf("item %.10s did not fail; failures: %v", id, failed)
		}
	}
	want := []map[string]any{
		{"id": "taken", "num": int64(7)},
		{"id": "a", "name": "fine", "num": int64(1), "score": json.Number("1.25"), "ok": true, "at": "2024-05-06 07:08:09"},
		{"id": "g", "name": "12.5"},
	}
	if got := s.Rows(testTable); !reflect.DeepEqual(got, want) {
		t.Errorf("rows:\n got %v\nwant %v", got, want)
	}
}

func TestUpdateSemantics(t *testing.T) {
	s := newServer(t, Options{})
	key := s.Options().APIKey
	steps := []struct {
		name     string
		body     map[string]any
		failures int
		rows     []map[string]any
	}{
		{"insert", upsert(byID("1", map[string]any{"name": "a", "score": 1.5})), 0,
			[]map[string]any{{"id": "1", "name": "a", "score": json.Number("1.5")}}},
		{"absent field untouched", upsert(byID("1", map[string]any{"name": "b"})), 0,
			[]map[string]any{{"id": "1", "name": "b", "score": json.Number("1.5")}}},
		{"null clears", upsert(byID("1", map[string]any{"score": nil})), 0,
			[]map[string]any{{"id": "1", "name": "b"}}},
		{"no create", map[string]any{"table_id": testTable, "update_data": []any{byID("2", map[string]any{"name": "c"})}}, 1,
			[]map[string]any{{"id": "1", "name": "b"}}},
		{"filter by int string", upsert(map[string]any{"filter": map[string]any{"num": "5"}, "updated_fields": map[string]any{"id": "5"}}), 0,
			[]map[string]any{{"id": "1", "name": "b"}, {"id": "5", "num": int64(5)}}},
		{"same row same value again", upsert(byID("5", map[string]any{"num": 5})), 0,
			[]map[string]any{{"id": "1", "name": "b"}, {"id": "5", "num": int64(5)}}},
		{"unique collision", upsert(byID("1", map[string]any{"num": 5})), 1,
			[]map[string]any{{"id": "1", "name": "b"}, {"id": "5", "num": int64(5)}}},
	}
	for _, st := range steps {
		r := call(t, s, UpdatePath, key, st.body)
		if r.status != http.StatusOK || r.body["fail_count"] != json.Number(strconv.Itoa(st.failures)) {
			t.Fatalf("%s: %d %v", st.name, r.status, r.body)
		}
		if got := s.Rows(testTable); !reflect.DeepEqual(got, st.rows) {
			t.Fatalf("%s: rows\n got %v\nwant %v", st.name, got, st.rows)
		}
	}
}

func TestRequiredField(t *testing.T) {
	s := newServer(t, Options{})
	if err := s.AddTable("req", []Field{{Name: "id", Type: TypeText, Unique: true}, {Name: "must", Type: TypeInt, Required: true}}); err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"table_id": "req", "is_create": true, "update_data": []any{
		byID("1", map[string]any{"must": 1}),
		byID("2", map[string]any{}),
	}}
	r := call(t, s, UpdatePath, s.Options().APIKey, body)
	if r.body["success_count"] != json.Number("1") || r.body["fail_count"] != json.Number("1") {
		t.Fatalf("got %v", r.body)
	}
	body["update_data"] = []any{byID("1", map[string]any{"must": nil})}
	if r := call(t, s, UpdatePath, s.Options().APIKey, body); r.body["fail_count"] != json.Number("1") {
		t.Fatalf("clearing a required field: %v", r.body)
	}
}

func TestAddTableRejectsBadFields(t *testing.T) {
	s := newServer(t, Options{})
	for _, fields := range [][]Field{
		{{Name: "x", Type: "STRING"}},
		{{Name: "x", Type: TypeText}, {Name: "x", Type: TypeInt}},
		{{Name: "", Type: TypeText}},
	} {
		if err := s.AddTable("t", fields); err == nil {
			t.Errorf("AddTable(%v) accepted", fields)
		}
	}
}

func TestSetInvalidAndDropTable(t *testing.T) {
	s := newServer(t, Options{})
	key := s.Options().APIKey
	s.SetInvalid(func(_, field string, v any) string {
		if v == "poison" {
			return "bad value in " + field
		}
		return ""
	})
	r := call(t, s, UpdatePath, key, upsert(byID("1", map[string]any{"name": "fine"}), byID("2", map[string]any{"name": "poison"})))
	if r.status != http.StatusBadRequest || r.code() != "40000" || !strings.Contains(r.body["message"].(string), "bad value in name") {
		t.Fatalf("got %d %v", r.status, r.body)
	}
	if rows := s.Rows(testTable); len(rows) != 0 {
		t.Fatalf("rows written: %v", rows)
	}
	s.SetInvalid(nil)
	if r := call(t, s, UpdatePath, key, upsert(byID("2", map[string]any{"name": "poison"}))); r.body["success_count"] != json.Number("1") {
		t.Fatalf("hook removed: %v", r.body)
	}
	s.DropTable(testTable)
	if r := call(t, s, UpdatePath, key, upsert(byID("2", map[string]any{"name": "x"}))); r.code() != "403106" {
		t.Fatalf("dropped table: %v", r.body)
	}
}
