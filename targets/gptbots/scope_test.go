package gptbots_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/gptbots"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

// TestTableFailureWindowLosesNothing: for a stretch of calls every call
// (page reads included) answers 40000, or 403106, while batches are
// written. Nothing is rejected, every record lands after the window and
// the table is exact.
func TestTableFailureWindowLosesNothing(t *testing.T) {
	for _, f := range []gptbotsfake.Fault{gptbotsfake.FaultInvalid, gptbotsfake.FaultTableNotFound} {
		t.Run(f.String(), func(t *testing.T) {
			h := newHarness(t, func(_ *gptbotsfake.Options, c *gptbots.Config) { c.MaxItems = 10 })
			h.prepare(t)
			want := map[string]map[string]any{}
			for round := range 5 {
				var recs []replicator.Record
				for i := range 30 {
					id := fmt.Sprint((round*11 + i) % 50)
					if round > 0 && i%6 == 0 {
						recs = append(recs, remove(id))
						delete(want, id)
						continue
					}
					n := int64(round*100 + i)
					recs = append(recs, upsert(id, field("n", val(replicator.KindInt, fmt.Sprint(n)))))
					want[id] = map[string]any{"id": id, "n": n}
				}
				if round == 1 {
					faults := make([]gptbotsfake.Fault, 30)
					for i := range faults {
						faults[i] = f
					}
					h.fake.InjectFaults(faults...)
				}
				if rej := h.write(t, recs...); len(rej) != 0 {
					t.Fatalf("round %d: rejected %v", round, rej)
				}
			}
			if got := h.rows(); !reflect.DeepEqual(got, want) {
				t.Errorf("rows differ:\n got %v\nwant %v", got, want)
			}
			if g := testutil.ToFloat64(h.metrics.TableFailing.WithLabelValues("bots", table)); g != 0 {
				t.Errorf("table_failing gauge %v after the window", g)
			}
			events := h.health.Events()
			if want := []string{table + ":failing", table + ":ok"}; !reflect.DeepEqual(events, want) {
				t.Errorf("health events %v, want %v", events, want)
			}
			if f == gptbotsfake.FaultTableNotFound && h.errorsCounted("table") < 30 {
				t.Errorf("%v table errors counted, want 30", h.errorsCounted("table"))
			}
			if n := strings.Count(h.logs.String(), "failing as a whole"); n != 1 {
				t.Errorf("%d failing log lines, want one per change of state", n)
			}
		})
	}
}

// TestLoneInvalidRecordRejected: a record the API refuses with 40000 is
// still rejected when it travels alone, once a probe shows the table
// healthy, and when it travels with others that land.
func TestLoneInvalidRecordRejected(t *testing.T) {
	h := newHarness(t, nil)
	h.prepare(t)
	h.fake.SetInvalid(func(_, _ string, v any) string {
		if v == "poison" {
			return "cannot store this"
		}
		return ""
	})
	rej := h.write(t, upsert("1", field("name", text("poison"))))
	if got := rejectedIDs(rej); len(got) != 1 || !strings.Contains(got["1"], "40000") {
		t.Fatalf("rejected %v", got)
	}
	if n := len(h.calls(gptbotsfake.PagePath)); n < 2 {
		t.Errorf("%d page calls; a lone refusal needs a probe (besides Prepare's)", n)
	}
	rej = h.write(t, upsert("2", field("name", text("poison"))), upsert("3"), upsert("4"))
	if got := rejectedIDs(rej); len(got) != 1 || got["2"] == "" {
		t.Fatalf("rejected %v", got)
	}
	if rows := h.rows(); len(rows) != 2 {
		t.Errorf("rows %v, want 3 and 4", rows)
	}
}

// TestFieldMissingIsTableFailure: a per-item failure naming a field the
// table lacks is the table's failure, not the items': the write waits.
func TestFieldMissingIsTableFailure(t *testing.T) {
	h := newHarness(t, func(_ *gptbotsfake.Options, c *gptbots.Config) { c.MaxRetries = 2 })
	h.prepare(t)
	if err := h.fake.AddTable(table, fields[:3]); err != nil {
		t.Fatal(err)
	}
	rej, err := h.w.Write(ctx(t), replicator.Batch{Table: spec, Records: []replicator.Record{
		upsert("1", field("n", val(replicator.KindInt, "1"))), upsert("2", field("n", val(replicator.KindInt, "2"))),
	}})
	if err == nil || len(rej) != 0 || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Write: %v, rejected %v", err, rej)
	}
}
