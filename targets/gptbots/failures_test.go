package gptbots_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/gptbots"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

func TestFailDetailRejectsExactlyThoseRecords(t *testing.T) {
	h := newHarness(t, nil)
	h.prepare(t)
	h.write(t, upsert("owner", field("email", text("taken@x"))))
	h.fake.SetReject(func(_, _ string, v any) string {
		if s, ok := v.(string); ok && strings.Contains(s, "BAD") {
			return "value refused"
		}
		return ""
	})
	var recs []replicator.Record
	for i := range 10 {
		name := "fine"
		if i%4 == 1 {
			name = "BAD name"
		}
		recs = append(recs, upsert(fmt.Sprint(i), field("name", text(name))))
	}
	recs = append(recs, upsert("dup", field("email", text("taken@x"))))
	rej := h.write(t, recs...)
	got := rejectedIDs(rej)
	want := []string{"1", "5", "9", "dup"}
	if len(got) != len(want) {
		t.Fatalf("rejected %v, want %v", got, want)
	}
	for _, id := range want {
		if !strings.HasPrefix(got[id], "GPTBots: ") {
			t.Errorf("%s: reason %q", id, got[id])
		}
	}
	if !strings.Contains(got["1"], "value refused") || !strings.Contains(got["dup"], "already exists") {
		t.Errorf("reasons %v", got)
	}
	rows := h.rows()
	if len(rows) != 8 {
		t.Errorf("%d rows, want owner and 7 fine", len(rows))
	}
	for id := range got {
		if _, there := rows[id]; there {
			t.Errorf("rejected %s landed", id)
		}
	}
	if n := len(h.calls(gptbotsfake.UpdatePath)); n != 2 {
		t.Errorf("%d update calls; attributed failures need no split", n)
	}
	if n := testutil.ToFloat64(h.metrics.Rows.WithLabelValues("bots", table, "upsert")); n != 8 {
		t.Errorf("rows metric %v, want 8", n)
	}
}

func TestInvalidRequestIsolatesBadRecords(t *testing.T) {
	h := newHarness(t, nil)
	h.prepare(t)
	h.fake.SetInvalid(func(_, field string, v any) string {
		if v == "poison" {
			return "cannot store " + field
		}
		return ""
	})
	var recs []replicator.Record
	for i := range 20 {
		name := "fine"
		if i == 3 || i == 17 {
			name = "poison"
		}
		recs = append(recs, upsert(fmt.Sprint(i), field("name", text(name))))
	}
	rej := h.write(t, recs...)
	got := rejectedIDs(rej)
	if len(got) != 2 || !strings.Contains(got["3"], "cannot store name") || got["17"] == "" {
		t.Fatalf("rejected %v", got)
	}
	if n := len(h.rows()); n != 18 {
		t.Errorf("%d rows, want 18", n)
	}
	if h.errorsCounted("rejected") == 0 {
		t.Error("40000 answers not counted")
	}
}

func TestTransientFailuresRetried(t *testing.T) {
	for _, f := range []gptbotsfake.Fault{
		gptbotsfake.FaultServerError,
		gptbotsfake.FaultBadGateway,
		gptbotsfake.FaultThrottle,
		gptbotsfake.FaultDrop,
		gptbotsfake.FaultLostAnswer,
		gptbotsfake.FaultSlow,
	} {
		t.Run(f.String(), func(t *testing.T) {
			h := newHarness(t, func(o *gptbotsfake.Options, c *gptbots.Config) {
				c.RequestTimeout = 300 * time.Millisecond
				o.CodedErrorsAsOK = f == gptbotsfake.FaultServerError
			})
			h.prepare(t)
			h.write(t, upsert("gone"))
			h.fake.InjectFaults(f, f)
			rej := h.write(t, remove("gone"), upsert("1", field("n", val(replicator.KindInt, "1"))), upsert("2"))
			if len(rej) != 0 {
				t.Fatalf("rejected %v", rej)
			}
			want := map[string]map[string]any{"1": {"id": "1", "n": int64(1)}, "2": {"id": "2"}}
			if got := h.rows(); !reflect.DeepEqual(got, want) {
				t.Errorf("rows %v", got)
			}
			if !strings.Contains(h.logs.String(), "retrying") {
				t.Error("retries were not logged")
			}
			total := 0.0
			for _, reason := range []string{"server", "throttled", "timeout", "connection"} {
				total += h.errorsCounted(reason)
			}
			if total < 2 {
				t.Errorf("%v failed attempts counted, want 2", total)
			}
			h.checkNoSecret(t, nil)
		})
	}
}

func TestRandomFaultsConverge(t *testing.T) {
	h := newHarness(t, func(_ *gptbotsfake.Options, c *gptbots.Config) {
		c.RequestTimeout = 200 * time.Millisecond
		c.MaxItems = 10
	})
	h.prepare(t)
	h.fake.SetFaultRate(0.3, gptbotsfake.FaultServerError, gptbotsfake.FaultBadGateway, gptbotsfake.FaultThrottle,
		gptbotsfake.FaultDrop, gptbotsfake.FaultLostAnswer, gptbotsfake.FaultSlow)
	want := map[string]map[string]any{}
	for round := range 4 {
		var recs []replicator.Record
		for i := range 30 {
			id := fmt.Sprint(i)
			if (i+round)%5 == 0 {
				recs = append(recs, remove(id))
				delete(want, id)
				continue
			}
			n := fmt.Sprint(round*100 + i)
			recs = append(recs, upsert(id, field("n", val(replicator.KindInt, n))))
			want[id] = map[string]any{"id": id, "n": int64(round*100 + i)}
		}
		if rej := h.write(t, recs...); len(rej) != 0 {
			t.Fatalf("round %d: rejected %v", round, rej)
		}
	}
	h.fake.SetFaultRate(0)
	if got := h.rows(); !reflect.DeepEqual(got, want) {
		t.Errorf("rows differ:\n got %v\nwant %v", got, want)
	}
}

func TestMaxRetriesGivesUp(t *testing.T) {
	h := newHarness(t, func(_ *gptbotsfake.Options, c *gptbots.Config) { c.MaxRetries = 2 })
	h.prepare(t)
	h.fake.SetFaultRate(1, gptbotsfake.FaultServerError)
	_, err := h.w.Write(ctx(t), replicator.Batch{Table: spec, Records: []replicator.Record{upsert("1")}})
	if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") || !strings.Contains(err.Error(), table) {
		t.Fatalf("got %v", err)
	}
	if n := len(h.calls(gptbotsfake.UpdatePath)); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}
}

func TestRetriesStopWithContext(t *testing.T) {
	h := newHarness(t, nil)
	h.prepare(t)
	h.fake.SetFaultRate(1, gptbotsfake.FaultServerError)
	c, cancel := context.WithTimeout(ctx(t), 200*time.Millisecond)
	defer cancel()
	_, err := h.w.Write(c, replicator.Batch{Table: spec, Records: []replicator.Record{upsert("1")}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if n := len(h.calls(gptbotsfake.UpdatePath)); n < 2 {
		t.Errorf("%d calls; want retries until the context ended", n)
	}
}
