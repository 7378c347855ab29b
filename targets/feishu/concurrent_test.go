package feishu

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
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
// split into several requests, share the writer's bound on requests in
// flight; rows with a value the column refuses are still isolated per
// Write, and every other row lands. Run with -race: the schema cache, the
// table's health and the request slots are shared.
func TestConcurrentWritesShareTheRequestBound(t *testing.T) {
	e := newEnv(t, feishufake.Options{Jitter: 10 * time.Millisecond})
	e.addCustomers()
	counting := &countingTransport{rt: http.DefaultTransport.(*http.Transport).Clone()}
	e.http = &http.Client{Transport: counting}
	e.cfg.MaxConcurrentRequests = 3
	e.cfg.MaxBatchRows = 50
	w := e.writer()
	require.NoError(t, w.Prepare(context.Background(), []replicator.TableSpec{customers}))

	const writers, rows = 6, 200
	var wg sync.WaitGroup
	rejected := make([][]replicator.Rejection, writers)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs := make([]replicator.Record, rows)
			for i := range recs {
				id := g*rows + i
				big := val(replicator.KindInt, fmt.Sprint(id))
				if i%50 == 7 {
					big = val(replicator.KindText, "not a number")
				}
				recs[i] = upsertRec(idField(id), field("name", val(replicator.KindText, fmt.Sprint("n", id))), field("big", big))
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			rej, err := w.Write(ctx, replicator.Batch{Table: customers, Records: recs})
			require.NoError(t, err)
			rejected[g] = rej
		}()
	}
	wg.Wait()
	for g := range writers {
		require.Len(t, rejected[g], rows/50, "writer %d: one refused value per 50 rows", g)
		for _, r := range rejected[g] {
			require.Equal(t, "big", r.Column)
		}
	}
	require.Len(t, e.fake.Rows("customers"), writers*rows, "rows with a refused value land without it")
	require.LessOrEqual(t, counting.max.Load(), int64(3), "requests in flight exceed max_concurrent_requests")
	require.Greater(t, counting.max.Load(), int64(1), "requests should travel together")
}
