package gptbots_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

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

// A value its field cannot hold is a column rejection: the rest of the
// row lands, and so does every later change of the row (pgoutput resends
// every column on each update, so rejecting the whole row would freeze it).
func TestUnencodableValuesLeftOut(t *testing.T) {
	h := newHarness(t, nil)
	h.prepare(t)
	rej := h.write(t,
		upsert("ok"),
		upsert("frac", field("n", val(replicator.KindNumeric, "1.5")), field("name", text("frac name"))),
		upsert("unix", field("at", val(replicator.KindInt, "1700000000000")), field("name", text("unix name"))),
		upsert("nan", field("f", val(replicator.KindFloat, "NaN")), field("name", text("nan name"))),
		upsert("word", field("n", text("twelve")), field("name", text("word name")), field("f", val(replicator.KindFloat, "2.5"))),
	)
	wantColumns := map[string]string{"frac": "n", "unix": "at", "nan": "f", "word": "n"}
	if len(rej) != len(wantColumns) {
		t.Fatalf("%d rejections, want %d: %v", len(rej), len(wantColumns), rej)
	}
	for _, r := range rej {
		id := string(r.Record.Key[0].Value.Raw)
		if r.Column != wantColumns[id] || !strings.Contains(r.Reason, "cannot encode") {
			t.Errorf("%s: column %q reason %q, want column %q", id, r.Column, r.Reason, wantColumns[id])
		}
	}
	if got := string(rej[len(rej)-1].Value); got != "twelve" {
		t.Errorf("rejected value %q, want the value as sent", got)
	}
	rows := h.rows()
	if len(rows) != 5 || rows["word"]["name"] != "word name" || rows["word"]["f"] != json.Number("2.5") {
		t.Fatalf("rows %v", rows)
	}
	if _, there := rows["word"]["n"]; there {
		t.Errorf("the refused field was written: %v", rows["word"])
	}
	if n := h.errorsCounted("unencodable"); n != 4 {
		t.Errorf("unencodable counted %v times, want 4", n)
	}

	// A later update of the same row, still carrying the bad value, lands.
	rej = h.write(t, upsert("word", field("n", text("twelve")), field("name", text("word name 2"))))
	if len(rej) != 1 || rej[0].Column != "n" {
		t.Fatalf("rejections %v, want the column n only", rej)
	}
	if got := h.rows()["word"]["name"]; got != "word name 2" {
		t.Errorf("the later update did not land: name %v", got)
	}
	// Once the value is good, it lands too.
	if rej = h.write(t, upsert("word", field("n", val(replicator.KindInt, "12")))); len(rej) != 0 {
		t.Fatalf("rejected %v", rej)
	}
	if got := h.rows()["word"]["n"]; got != int64(12) {
		t.Errorf("n = %v, want 12", got)
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
	sizes := h.itemCounts(gptbotsfake.UpdatePath)
	if !reflect.DeepEqual(sizes, []int{50, 100, 100}) {
		t.Errorf("items per call %v, want 50, 100 and 100", sizes)
	}
	if n := len(h.rows()); n != 250 {
		t.Errorf("%d rows, want 250", n)
	}
}

func TestSplitsAtMaxBodyBytes(t *testing.T) {
	// Bodies near 5 MB take seconds to encode and parse under -race on a
	// busy machine; the default 2 s timeout would retry them forever, and
	// so would three of them parsed at once.
	h := newHarness(t, func(_ *gptbotsfake.Options, c *gptbots.Config) {
		c.RequestTimeout = 20 * time.Second
		c.MaxConcurrentRequests = 1
	})
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
	sizes := h.itemCounts(gptbotsfake.DeletePath)
	if !reflect.DeepEqual(sizes, []int{501, 1000, 1000}) {
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
		upsert("e", field("email", text(strings.Repeat("m", 257))), field("name", text("E"))))
	if len(rej) != 3 {
		t.Fatalf("rejected %d, want the long key's upsert and delete and the long email", len(rej))
	}
	for _, r := range rej {
		if !strings.Contains(r.Reason, "256") {
			t.Errorf("reason %q", r.Reason)
		}
		if id := string(r.Record.Key[0].Value.Raw); (id == "e") != (r.Column == "email") {
			t.Errorf("rejection of %s names column %q", id, r.Column)
		}
	}
	rows := h.rows()
	if _, there := rows[ok]; !there || len(rows) != 2 || rows["e"]["name"] != "E" || rows["e"]["email"] != nil {
		t.Errorf("rows %v: want %s, and e without its email", rows, ok)
	}
	if n := len(h.calls(gptbotsfake.DeletePath)); n != 0 {
		t.Errorf("%d delete calls for nothing", n)
	}
}

// A rejection quotes a short prefix of a value, never a whole large one.
func TestRejectionReasonsShort(t *testing.T) {
	h := newHarness(t, nil)
	h.prepare(t)
	huge := strings.Repeat("x", 1<<20)
	rej := h.write(t, upsert("h", field("n", val(replicator.KindInt, huge))))
	if len(rej) != 1 || rej[0].Column != "n" {
		t.Fatalf("rejections %v", len(rej))
	}
	if n := len(rej[0].Reason); n > 1024 {
		t.Errorf("reason of %d bytes", n)
	}
	if n := len(h.logs.String()); n > 64<<10 {
		t.Errorf("logs of %d bytes for one rejection", n)
	}
}
