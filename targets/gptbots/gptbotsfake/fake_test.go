package gptbotsfake

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

const testTable = "tbl1"

var testFields = []Field{
	{Name: "id", Type: TypeText, Unique: true},
	{Name: "num", Type: TypeInt, Unique: true},
	{Name: "name", Type: TypeText},
	{Name: "score", Type: TypeFloat},
	{Name: "ok", Type: TypeBoolean},
	{Name: "at", Type: TypeDateTime},
}

// newServer starts a fake without a rate limit, with the test table.
func newServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.RequestsPerSecond == 0 {
		opts.RequestsPerSecond = -1
	}
	s := New(opts)
	t.Cleanup(s.Close)
	if err := s.AddTable(testTable, testFields); err != nil {
		t.Fatal(err)
	}
	return s
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
}

func call(t *testing.T, s *Server, path, key string, body any) reply {
	t.Helper()
	data, ok := body.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+path, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := reply{status: resp.StatusCode, header: resp.Header}
	d := json.NewDecoder(resp.Body)
	d.UseNumber()
	if err := d.Decode(&out.body); err != nil {
		t.Fatalf("decode answer: %v", err)
	}
	return out
}

func (r reply) code() string {
	if c, ok := r.body["code"].(json.Number); ok {
		return string(c)
	}
	return ""
}

func upsert(items ...map[string]any) map[string]any {
	return map[string]any{"table_id": testTable, "is_create": true, "update_data": items}
}

func byID(id string, fields map[string]any) map[string]any {
	return map[string]any{"filter": map[string]any{"id": id}, "updated_fields": fields}
}

func TestAuth(t *testing.T) {
	s := newServer(t, Options{APIKey: "right"})
	for _, key := range []string{"", "wrong"} {
		r := call(t, s, PagePath, key, map[string]any{"table_id": testTable, "page": 1, "page_size": 1})
		if r.status != http.StatusUnauthorized || r.code() != "401" || r.body["message"] == "" {
			t.Errorf("key %q: got %d %v", key, r.status, r.body)
		}
	}
	r := call(t, s, PagePath, "right", map[string]any{"table_id": testTable, "page": 1, "page_size": 1})
	if r.status != http.StatusOK {
		t.Errorf("right key: got %d %v", r.status, r.body)
	}
}

func TestRateLimit(t *testing.T) {
	s := newServer(t, Options{RequestsPerSecond: 3, RetryAfter: 2})
	page := map[string]any{"table_id": testTable, "page": 1, "page_size": 1}
	for i := range 3 {
		if r := call(t, s, PagePath, s.Options().APIKey, page); r.status != http.StatusOK {
			t.Fatalf("call %d: %d %v", i, r.status, r.body)
		}
	}
	r := call(t, s, PagePath, s.Options().APIKey, page)
	if r.status != http.StatusTooManyRequests || r.code() != "429" || r.header.Get("Retry-After") != "2" {
		t.Fatalf("4th call: %d %v %v", r.status, r.body, r.header)
	}
	time.Sleep(1100 * time.Millisecond)
	if r := call(t, s, PagePath, s.Options().APIKey, page); r.status != http.StatusOK {
		t.Fatalf("after a second: %d %v", r.status, r.body)
	}
	var admitted []Request
	for _, q := range s.Requests() {
		if q.Status == http.StatusOK {
			admitted = append(admitted, q)
		}
	}
	if n := MaxPerWindow(admitted, time.Second); n != 3 {
		t.Errorf("MaxPerWindow = %d, want 3", n)
	}
}

func TestWholeRequestErrors(t *testing.T) {
	many := make([]map[string]any, MaxUpdateItems+1)
	for i := range many {
		many[i] = byID(strings.Repeat("x", i+1), map[string]any{"name": "n"})
	}
	manyDeletes := make([]map[string]any, MaxDeleteItems+1)
	for i := range manyDeletes {
		manyDeletes[i] = map[string]any{"filter": map[string]any{"id": "x"}}
	}
	big := upsert(byID("1", map[string]any{"name": strings.Repeat("y", 2000)}))
	for _, tc := range []struct {
		name   string
		path   string
		body   any
		status int
		code   string
		// maxBody, when set, lowers Options.MaxBodyBytes.
		maxBody int
	}{
		{"bad json", UpdatePath, []byte(`{"table_id":`), 400, "40000", 0},
		{"no table id", UpdatePath, map[string]any{"is_create": true, "update_data": []any{byID("1", nil)}}, 400, "40000", 0},
		{"unknown table", UpdatePath, map[string]any{"table_id": "nope", "update_data": []any{byID("1", map[string]any{})}}, 403, "403106", 0},
		{"too many items", UpdatePath, upsert(many...), 400, "40000", 0},
		{"no items", UpdatePath, upsert(), 400, "40000", 0},
		{"body too large", UpdatePath, big, 400, "40000", 1000},
		{"filter two fields", UpdatePath, upsert(map[string]any{"filter": map[string]any{"id": "1", "num": 1}, "updated_fields": map[string]any{}}), 400, "40000", 0},
		{"filter not unique", UpdatePath, upsert(map[string]any{"filter": map[string]any{"name": "a"}, "updated_fields": map[string]any{}}), 400, "40000", 0},
		{"filter unknown field", UpdatePath, upsert(map[string]any{"filter": map[string]any{"zz": "a"}, "updated_fields": map[string]any{}}), 400, "40000", 0},
		{"no filter", UpdatePath, upsert(map[string]any{"updated_fields": map[string]any{}}), 400, "40000", 0},
		{"no updated_fields", UpdatePath, upsert(map[string]any{"filter": map[string]any{"id": "1"}}), 400, "40000", 0},
		{"is_create not bool", UpdatePath, map[string]any{"table_id": testTable, "is_create": "yes", "update_data": []any{byID("1", map[string]any{})}}, 400, "40000", 0},
		{"too many deletes", DeletePath, map[string]any{"table_id": testTable, "delete_data": manyDeletes}, 400, "40000", 0},
		{"delete filter not unique", DeletePath, map[string]any{"table_id": testTable, "delete_data": []any{map[string]any{"filter": map[string]any{"name": "a"}}}}, 400, "40000", 0},
		{"delete filter bad value", DeletePath, map[string]any{"table_id": testTable, "delete_data": []any{map[string]any{"filter": map[string]any{"num": "abc"}}}}, 400, "40000", 0},
		{"delete unknown table", DeletePath, map[string]any{"table_id": "nope", "delete_data": []any{map[string]any{"record_id": "1"}}}, 403, "403106", 0},
		{"page size too large", PagePath, map[string]any{"table_id": testTable, "page": 1, "page_size": MaxPageSize + 1}, 400, "40000", 0},
		{"page zero", PagePath, map[string]any{"table_id": testTable, "page": 0, "page_size": 1}, 400, "40000", 0},
		{"page unknown table", PagePath, map[string]any{"table_id": "nope", "page": 1, "page_size": 1}, 403, "403106", 0},
		{"unknown path", "/v2/database/nothing", map[string]any{}, 404, "404", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{MaxBodyBytes: tc.maxBody})
			r := call(t, s, tc.path, s.Options().APIKey, tc.body)
			if r.status != tc.status || r.code() != tc.code || r.body["message"] == "" {
				t.Errorf("got %d %v, want %d code %s", r.status, r.body, tc.status, tc.code)
			}
			if rows := s.Rows(testTable); len(rows) != 0 {
				t.Errorf("rows written: %v", rows)
			}
		})
	}
}

func TestNoAccessAndCodedErrorsAsOK(t *testing.T) {
	s := newServer(t, Options{CodedErrorsAsOK: true})
	s.SetAccess(testTable, false)
	r := call(t, s, UpdatePath, s.Options().APIKey, upsert(byID("1", map[string]any{"name": "a"})))
	if r.status != http.StatusOK || r.code() != "403131" {
		t.Fatalf("got %d %v", r.status, r.body)
	}
	s.SetAccess(testTable, true)
	r = call(t, s, UpdatePath, s.Options().APIKey, upsert(byID("1", map[string]any{"name": "a"})))
	if r.status != http.StatusOK || r.code() != "" || r.body["success_count"] != json.Number("1") {
		t.Fatalf("got %d %v", r.status, r.body)
	}
}
