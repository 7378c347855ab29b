package writertest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/replicator-cdc/replicator"
)

// testRequestBound: several Writes of one table at once (as the pipeline
// makes them), each split into several requests, share the writer's bound
// on requests in flight; a record the target refuses comes back from the
// Write that sent it, and every other record lands. Run with -race: the
// writer's per-table state and its request slots are shared.
func testRequestBound(t *testing.T, h Harness) {
	const bound, perRequest, writes, rows = 3, 50, 6, 200
	e := startWith(t, h, Options{MaxConcurrentRequests: bound, MaxBatchRows: perRequest, Jitter: 10 * time.Millisecond}, "items")
	poison := e.tg.Poison(t)
	want := model{}
	refusedBy := map[string]int{} // key of a poisoned record → its Write
	recs := make([][]replicator.Record, writes)
	for g := range writes {
		var clean []replicator.Record
		for i := range rows {
			id := int64(g*rows + i)
			r := full(id, fmt.Sprint("n", id), float64(id), i%2 == 0)
			if i%perRequest == 7 {
				r = with(r, poison)
				refusedBy[fmt.Sprint(id)] = g
			} else {
				clean = append(clean, r)
			}
			recs[g] = append(recs[g], r)
		}
		want.apply(cloneRecords(clean))
	}
	rejected := make([][]replicator.Rejection, writes)
	errs := make([]error, writes)
	var wg sync.WaitGroup
	for g := range writes {
		wg.Go(func() { rejected[g], errs[g] = e.tryWrite("items", recs[g]) })
	}
	wg.Wait()
	seen := 0
	for g := range writes {
		if errs[g] != nil {
			t.Fatalf("Write %d: %v", g, errs[g])
		}
		for _, r := range rejected[g] {
			k := string(r.Record.Key[0].Value.Raw)
			if w, ok := refusedBy[k]; !ok || w != g {
				t.Errorf("Write %d rejected key %s, which it did not send poisoned", g, k)
			}
			seen++
		}
	}
	if seen != len(refusedBy) {
		t.Errorf("%d rejections, want the %d poisoned records", seen, len(refusedBy))
	}
	e.check("items", want)
	if n := e.flight.max.Load(); n > bound || n < 2 {
		t.Errorf("%d requests in flight at most, want 2 to %d (the writer's bound)", n, bound)
	}
}
