package gptbotsfake

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
)

func TestDelete(t *testing.T) {
	s := newServer(t, Options{})
	key := s.Options().APIKey
	call(t, s, UpdatePath, key, upsert(
		byID("1", map[string]any{"num": 1}),
		byID("2", map[string]any{"num": 2}),
		byID("3", map[string]any{"num": 3}),
	))
	page := call(t, s, PagePath, key, map[string]any{"table_id": testTable, "page": 1, "page_size": 1, "filter": map[string]any{"id": "3"}})
	rec3 := page.body["records"].([]any)[0].(map[string]any)["record_id"].(string)
	r := call(t, s, DeletePath, key, map[string]any{"table_id": testTable, "delete_data": []any{
		map[string]any{"filter": map[string]any{"id": "1"}},
		map[string]any{"filter": map[string]any{"num": "2"}},
		map[string]any{"record_id": rec3},
		map[string]any{"filter": map[string]any{"id": "missing"}},
		map[string]any{"record_id": "missing"},
	}})
	if r.status != http.StatusOK || r.code() != "0" || r.body["message"] != "OK" {
		t.Fatalf("got %d %v", r.status, r.body)
	}
	if rows := s.Rows(testTable); len(rows) != 0 {
		t.Errorf("rows left: %v", rows)
	}
}

func TestPage(t *testing.T) {
	for _, wrap := range []bool{false, true} {
		s := newServer(t, Options{WrapPage: wrap})
		key := s.Options().APIKey
		for _, id := range []string{"1", "2", "3"} {
			call(t, s, UpdatePath, key, upsert(byID(id, map[string]any{"name": "n" + id, "ok": true, "at": "2024-01-02 03:04:05"})))
		}
		r := call(t, s, PagePath, key, map[string]any{"table_id": testTable, "page": 2, "page_size": 2})
		body := r.body
		if wrap {
			if r.code() != "0" || body["message"] != "OK" {
				t.Fatalf("wrapped: %v", body)
			}
			body = body["data"].(map[string]any)
		}
		if body["total"] != json.Number("3") {
			t.Errorf("total: %v", body["total"])
		}
		info := body["table_info"].(map[string]any)
		fields := info["fields"].([]any)
		if info["id"] != testTable || len(fields) != len(testFields) {
			t.Fatalf("table_info: %v", info)
		}
		want := map[string]any{"name": "num", "description": "num", "type": "INT", "required": false, "unique": true}
		if !reflect.DeepEqual(fields[1], want) {
			t.Errorf("field: %v, want %v", fields[1], want)
		}
		recs := body["records"].([]any)
		if len(recs) != 1 {
			t.Fatalf("records: %v", recs)
		}
		rec := recs[0].(map[string]any)
		wantValue := map[string]any{"id": "3", "name": "n3", "ok": true, "at": "2024-01-02 03:04:05"}
		if rec["record_id"] == "" || !reflect.DeepEqual(rec["value"], wantValue) {
			t.Errorf("record: %v", rec)
		}
	}
}
