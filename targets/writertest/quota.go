package writertest

import (
	"fmt"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/replicator-cdc/replicator"
)

// testQuotaExact: one credential's quota holds exactly with several
// requests in flight. Goroutines writing through one writer never put more
// requests into any sliding second than the API allows, and after a
// throttling answer no request arrives before the reset it named: not the
// ones queued at the limiter when it came, nor those in backoff. Both are
// counts the fake takes from arrival times, not timings.
func testQuotaExact(t *testing.T, h Harness) {
	const rate, goroutines, writes = 2, 6, 2
	e := startWith(t, h, Options{RequestsPerSecond: rate, RateLimit: rate}, "items")
	// The first write request is throttled while the others queue behind
	// it; a second throttle comes mid-way, while writes are in flight.
	e.tg.InjectFaults(FaultThrottleLate)
	var g errgroup.Group
	m := model{}
	recs := make([][]replicator.Record, goroutines)
	for i := range goroutines {
		for j := range writes {
			id := int64(i*writes + j)
			recs[i] = append(recs[i], full(id, fmt.Sprint("r", id), float64(id), id%2 == 0))
		}
		m.apply(cloneRecords(recs[i]))
	}
	for i := range goroutines {
		g.Go(func() error {
			for j, r := range recs[i] {
				if i == 0 && j == 1 {
					e.tg.InjectFaults(FaultThrottleLate)
				}
				rej, err := e.tryWrite("items", []replicator.Record{r})
				if err != nil {
					return err
				}
				if len(rej) > 0 {
					return fmt.Errorf("rejected: %s", rej[0].Reason)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	e.check("items", m)
	q := e.tg.Quota()
	if q.Throttles < 2 {
		t.Errorf("%d throttling answers, want the 2 injected", q.Throttles)
	}
	if q.MaxPerSecond > rate {
		t.Errorf("%d requests arrived within one sliding second, limit %d", q.MaxPerSecond, rate)
	}
	if q.Early != 0 {
		t.Errorf("%d requests arrived before a throttling answer's reset", q.Early)
	}
}
