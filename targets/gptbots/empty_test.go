package gptbots_test

import (
	"strconv"
	"testing"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

// Empty deletes more rows than one delete call may name (1000), reading
// record ids through records/page (at most 100 a page).
func TestEmptyDeletesEveryRow(t *testing.T) {
	h := newHarness(t, nil)
	h.prepare(t)
	var recs []replicator.Record
	for i := range 1150 {
		recs = append(recs, upsert(strconv.Itoa(i)))
		if len(recs) == 100 {
			h.write(t, recs...)
			recs = recs[:0]
		}
	}
	h.write(t, recs...)
	if n := len(h.rows()); n != 1150 {
		t.Fatalf("%d rows before emptying, want 1150", n)
	}
	if err := h.w.Empty(ctx(t), spec); err != nil {
		t.Fatal(err)
	}
	if n := len(h.rows()); n != 0 {
		t.Fatalf("%d rows left", n)
	}
	if n := len(h.calls(gptbotsfake.DeletePath)); n != 2 {
		t.Errorf("%d delete calls, want 2 (1000 ids, then 150)", n)
	}
}
