package gptbots_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sync/errgroup"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/gptbots"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

func TestRateNeverExceeded(t *testing.T) {
	const rps = 20
	h := newHarness(t, func(o *gptbotsfake.Options, c *gptbots.Config) {
		o.RequestsPerSecond = rps
		c.RequestsPerSecond = rps
	})
	other := spec
	other.Table = "tbl_orders"
	if err := h.fake.AddTable(other.Table, fields); err != nil {
		t.Fatal(err)
	}
	if err := h.w.Prepare(ctx(t), []replicator.TableSpec{spec, other}); err != nil {
		t.Fatal(err)
	}
	// Two tables written concurrently share the writer's limiter.
	var g errgroup.Group
	for _, s := range []replicator.TableSpec{spec, other} {
		g.Go(func() error {
			for i := range 25 {
				if _, err := h.w.Write(ctx(t), replicator.Batch{Table: s, Records: []replicator.Record{upsert(fmt.Sprint(i))}}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	// On a loaded machine a timer can fire tens of milliseconds late and
	// bunch that request with the next ones, which the writer's 5% margin
	// absorbs only up to 50 ms. The window is shortened by that much so that
	// the test measures the writer's pacing, not the machine's load; an
	// unpaced writer would send all 52 calls within a few milliseconds.
	log := h.fake.Requests()
	if n := gptbotsfake.MaxPerWindow(log, 950*time.Millisecond); n > rps {
		t.Errorf("%d calls within 950 ms, limit %d per second", n, rps)
	}
	if len(h.fake.Rows(spec.Table)) != 25 || len(h.fake.Rows(other.Table)) != 25 {
		t.Errorf("%d calls, %d and %d rows", len(log), len(h.fake.Rows(spec.Table)), len(h.fake.Rows(other.Table)))
	}
	if w := testutil.ToFloat64(h.metrics.ThrottleWait.WithLabelValues("bots")); w < 1 {
		t.Errorf("throttle wait %vs, want the pacing counted", w)
	}
}
