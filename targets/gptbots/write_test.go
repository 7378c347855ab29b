package gptbots_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/gptbots"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

func TestTypedValuesLand(t *testing.T) {
	h := newHarness(t, func(_ *gptbotsfake.Options, c *gptbots.Config) { c.Timezone = "Asia/Shanghai" })
	h.prepare(t)
	rej := h.write(t,
		upsert("1",
			field("email", val(replicator.KindText, "a@x")),
			field("name", val(replicator.KindJSON, `{"k":[1,2]}`)),
			field("n", val(replicator.KindInt, "9007199254740993")),
			field("f", val(replicator.KindNumeric, "3.14159265358979323846")),
			field("ok", val(replicator.KindBool, "true")),
			field("at", val(replicator.KindTimestampTZ, "2024-01-02T23:59:59.999999+00:00")),
		),
		upsert("2", field("n", val(replicator.KindNumeric, "12.000")), field("at", val(replicator.KindDate, "2024-03-04"))),
	)
	if len(rej) != 0 {
		t.Fatalf("rejected: %v", rej)
	}
	want := map[string]map[string]any{
		"1": {"id": "1", "email": "a@x", "name": `{"k":[1,2]}`, "n": int64(9007199254740993),
			"f": json.Number("3.14159265358979323846"), "ok": true, "at": "2024-01-03 07:59:59"},
		"2": {"id": "2", "n": int64(12), "at": "2024-03-04 00:00:00"},
	}
	if got := h.rows(); !reflect.DeepEqual(got, want) {
		t.Errorf("rows:\n got %v\nwant %v", got, want)
	}
}

func TestUnencodableValuesRejected(t *testing.T) {
	h := newHarness(t, nil)
	h.prepare(t)
	rej := h.write(t,
		upsert("ok"),
		upsert("frac", field("n", val(replicator.KindNumeric, "1.5"))),
		upsert("unix", field("at", val(replicator.KindInt, "1700000000000"))),
		upsert("nan", field("f", val(replicator.KindFloat, "NaN"))),
		upsert("word", field("ok", val(replicator.KindText, "yes"))),
	)
	got := rejectedIDs(rej)
	for _, id := range []string{"frac", "unix", "nan", "word"} {
		if !strings.Contains(got[id], "cannot encode") {
			t.Errorf("%s: reason %q", id, got[id])
		}
	}
	if len(got) != 4 || len(h.rows()) != 1 {
		t.Errorf("rejected %v, rows %v", got, h.rows())
	}
}

func TestAbsentFieldUntouchedAndNullClears(t *testing.T) {
	h := newHarness(t, nil)
	h.prepare(t)
	h.write(t, upsert("1", field("name", text("big toasted value")), field("n", val(replicator.KindInt, "1")), field("f", val(replicator.KindFloat, "2.5"))))
	// An update that left "name" unchanged (TOAST) carries no name at all.
	h.write(t, upsert("1", field("n", val(replicator.KindInt, "2")), field("f", replicator.Null)))
	want := map[string]any{"id": "1", "name": "big toasted value", "n": int64(2)}
	if got := h.rows()["1"]; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestSplitsAtMaxItems(t *testing.T) {
	h := newHarness(t, nil)
	h.prepare(t)
	var recs []replicator.Record
	for i := range 250 {
		recs = append(recs, upsert(fmt.Sprint(i), field("n", val(replicator.KindInt, fmt.Sprint(i)))))
	}
	if rej := h.write(t, recs...); len(rej) != 0 {
		t.Fatalf("rejected: %v", rej)
	}
	var sizes []int
	for _, c := range h.calls(gptbotsfake.UpdatePath) {
		sizes = append(sizes, c.Items)
	}
	if !reflect.DeepEqual(sizes, []int{100, 100, 50}) {
		t.Errorf("items per call %v, want [100 100 50]", sizes)
	}
	if n := len(h.rows()); n != 250 {
		t.Errorf("%d rows, want 250", n)
	}
}

func TestSplitsAtMaxBodyBytes(t *testing.T) {
	h := newHarness(t, nil)
	h.prepare(t)
	big := strings.Repeat("é", 600_000) // 1.2 MB of UTF-8 each
	var recs []replicator.Record
	for i := range 9 {
		recs = append(recs, upsert(fmt.Sprint(i), field("name", text(big))))
	}
	tooBig := upsert("huge", field("name", text(strings.Repeat("x", 5_000_001))))
	rej := h.write(t, append(recs, tooBig)...)
	if got := rejectedIDs(rej); len(got) != 1 || !strings.Contains(got["huge"], "bytes") {
		t.Fatalf("rejected %v", got)
	}
	calls := h.calls(gptbotsfake.UpdatePath)
	if len(calls) != 3 {
		t.Errorf("%d calls, want 3 of 4+4+1 records", len(calls))
	}
	for _, c := range calls {
		if c.Bytes > gptbots.DefaultMaxBodyBytes || c.Code != 0 {
			t.Errorf("call of %d bytes answered %d", c.Bytes, c.Code)
		}
	}
	rows := h.rows()
	if len(rows) != 9 || rows["8"]["name"] != big {
		t.Errorf("%d rows", len(rows))
	}
}

func TestDeletesChunked(t *testing.T) {
	h := newHarness(t, nil)
	h.prepare(t)
	var ups, dels []replicator.Record
	for i := range 2500 {
		ups = append(ups, upsert(fmt.Sprint(i)))
		dels = append(dels, remove(fmt.Sprint(i)))
	}
	h.write(t, ups...)
	// Deleting rows that are not there is no error.
	dels = append(dels, remove("never-existed"))
	if rej := h.write(t, dels...); len(rej) != 0 {
		t.Fatalf("rejected: %v", rej)
	}
	var sizes []int
	for _, c := range h.calls(gptbotsfake.DeletePath) {
		sizes = append(sizes, c.Items)
	}
	if !reflect.DeepEqual(sizes, []int{1000, 1000, 501}) {
		t.Errorf("items per delete %v", sizes)
	}
	if n := len(h.rows()); n != 0 {
		t.Errorf("%d rows left", n)
	}
}

func TestMixedBatch(t *testing.T) {
	h := newHarness(t, nil)
	h.prepare(t)
	h.write(t, upsert("a"), upsert("b"))
	h.write(t, remove("a"), upsert("b", field("name", text("B"))), upsert("c"))
	want := map[string]map[string]any{"b": {"id": "b", "name": "B"}, "c": {"id": "c"}}
	if got := h.rows(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
}

func TestKeyLength(t *testing.T) {
	h := newHarness(t, nil)
	h.prepare(t)
	ok, long := strings.Repeat("語", 256), strings.Repeat("語", 257)
	rej := h.write(t, upsert(ok), upsert(long), remove(long),
		upsert("e", field("email", text(strings.Repeat("m", 257)))))
	if len(rej) != 3 {
		t.Fatalf("rejected %d, want the long key's upsert and delete and the long email", len(rej))
	}
	for _, r := range rej {
		if !strings.Contains(r.Reason, "256") {
			t.Errorf("reason %q", r.Reason)
		}
	}
	if _, there := h.rows()[ok]; !there || len(h.rows()) != 1 {
		t.Errorf("rows %v", h.rows())
	}
	if n := len(h.calls(gptbotsfake.DeletePath)); n != 0 {
		t.Errorf("%d delete calls for nothing", n)
	}
}
