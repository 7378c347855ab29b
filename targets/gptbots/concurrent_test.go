package gptbots_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/gptbots"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

// countingTransport records the most requests in flight at once.
type countingTransport struct {
	rt       http.RoundTripper
	now, max atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	n := c.now.Add(1)
	defer c.now.Add(-1)
	for m := c.max.Load(); n > m && !c.max.CompareAndSwap(m, n); m = c.max.Load() {
	}
	return c.rt.RoundTrip(r)
}

// Several Writes of one table at once (as the pipeline makes them), each
// split into chunks that travel together, share the writer's bound on
// calls in flight; items GPTBots refuses are still returned by the Write
// that sent them, and every other item lands. Run with -race.
func TestConcurrentWritesShareTheCallBound(t *testing.T) {
	fake := gptbotsfake.New(gptbotsfake.Options{APIKey: apiKey, RequestsPerSecond: -1, Jitter: 10 * time.Millisecond, Seed: 3})
	t.Cleanup(fake.Close)
	if err := fake.AddTable(table, fields); err != nil {
		t.Fatal(err)
	}
	counting := &countingTransport{rt: http.DefaultTransport.(*http.Transport).Clone()}
	w, err := gptbots.New(gptbots.Config{Name: "bots", BaseURL: fake.URL(), APIKey: apiKey, RequestsPerSecond: 1000,
		BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond, MaxConcurrentRequests: 3},
		gptbots.Deps{HTTPClient: &http.Client{Transport: counting}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Prepare(ctx(t), []replicator.TableSpec{spec}); err != nil {
		t.Fatal(err)
	}
	const writers, rows = 6, 250
	var wg sync.WaitGroup
	rejected := make([][]replicator.Rejection, writers)
	errs := make([]error, writers)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs := make([]replicator.Record, rows)
			for i := range recs {
				id := fmt.Sprint(g*rows + i)
				email := "e" + id
				if i%50 == 7 {
					email = "taken" // unique: all but one of these are refused
				}
				recs[i] = upsert(id, field("email", text(email)), field("n", val(replicator.KindInt, id)))
			}
			rejected[g], errs[g] = w.Write(ctx(t), replicator.Batch{Table: spec, Records: recs})
		}()
	}
	wg.Wait()
	refused := 0
	for g := range writers {
		if errs[g] != nil {
			t.Fatalf("writer %d: %v", g, errs[g])
		}
		refused += len(rejected[g])
	}
	taken := writers * rows / 50
	if refused != taken-1 || len(fake.Rows(table)) != writers*rows-refused {
		t.Errorf("%d refused (want %d), %d rows (want %d)", refused, taken-1, len(fake.Rows(table)), writers*rows-taken+1)
	}
	if n := counting.max.Load(); n > 3 || n < 2 {
		t.Errorf("%d calls in flight at most, want 2 to 3 (max_concurrent_requests 3)", n)
	}
}
