package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/targets/feishu"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// stampedWriter notes when each record's Write returned, by the record's
// key and operation: each change of the load below has its own.
type stampedWriter struct {
	replicator.Writer

	mu     sync.Mutex
	done   map[string]time.Time
	writes int
}

func changeID(r replicator.Record) string { return r.Op.String() + string(r.Key[0].Value.Raw) }

func (s *stampedWriter) MaxConcurrentRequests() int {
	return s.Writer.(concurrent).MaxConcurrentRequests()
}

func (s *stampedWriter) Backlog() (int, <-chan struct{}) { return s.Writer.(paced).Backlog() }

func (s *stampedWriter) Write(ctx context.Context, b replicator.Batch) ([]replicator.Rejection, error) {
	rej, err := s.Writer.Write(ctx, b)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	for _, r := range b.Records {
		s.done[changeID(r)] = now
	}
	return rej, err
}

// BenchmarkLatencyOverQuota streams a load above what Feishu's quota (10
// requests/s) carries in small batches into the Feishu fake (answers after
// 300 ms), through the real writer with its default 16 requests in flight,
// flushing after 50 ms: every 33 ms a transaction of two upserts of new
// keys and a delete of a key upserted 1.5 s before. Sent as flushed, that
// is one upsert and one delete request per flush, about 30 requests/s.
// It reports the change-to-target latency (from Add to the end of the
// Write holding the change) p50 and p99, the rows per write request and
// the write requests per second the fake received.
func BenchmarkLatencyOverQuota(b *testing.B) {
	for range b.N {
		runLatencyOverQuota(b, 20*time.Second)
	}
}

func runLatencyOverQuota(b *testing.B, load time.Duration) {
	tables := quotaTables(1)
	fake := feishufake.New(feishufake.Options{RequestsPerSecond: 10, Latency: 300 * time.Millisecond})
	b.Cleanup(fake.Close)
	require.NoError(b, fake.AddTable(tables[0].Spec.Table, []feishufake.Column{
		{Name: "id", DataType: "bigint", IsUnique: true}, {Name: "body", DataType: "text", AllowNull: true},
	}))
	fw, err := feishu.New(feishu.Config{Name: "api", BaseURL: fake.URL(), WorkspaceID: fake.Options().WorkspaceID,
		UserAccessToken: fake.AccessToken()}, feishu.Deps{})
	require.NoError(b, err)
	require.NoError(b, fw.Prepare(context.Background(), []replicator.TableSpec{tables[0].Spec}))
	w := &stampedWriter{Writer: fw, done: map[string]time.Time{}}
	p := New([]Route{{Rule: tables[0].Rule, Target: "api", Writer: w}}, nil, monitor.New(prometheus.NewRegistry()),
		Options{MaxInFlightBytes: 64 << 20, FlushInterval: 50 * time.Millisecond, BatchRows: 500, BatchBytes: 8 << 20, TickInterval: 100 * time.Millisecond},
		quietLogger())
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	const every, deleteBehind = 33 * time.Millisecond, 45
	added := map[string]time.Time{}
	tr := NewTracker(0)
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for tx := 0; time.Since(start) < load; {
		if due := start.Add(time.Duration(tx) * every); !time.Now().Before(due) {
			p.Begin(tr, time.Now())
			recs := []replicator.Record{upsertOf(2*tx, tx), upsertOf(2*tx+1, tx)}
			if tx >= deleteBehind {
				recs = append(recs, deleteOf(2*(tx-deleteBehind)))
			}
			for _, r := range recs {
				added[changeID(r)] = time.Now()
				require.NoError(b, p.Add(ctx, tables[0], r))
			}
			tx++
			p.Commit(replicator.LSN(tx))
		}
		require.NoError(b, p.FlushAged(ctx))
		<-tick.C
	}
	require.NoError(b, p.WaitFor(ctx, tr.Idle))

	w.mu.Lock()
	var lat []float64
	rows := 0
	for id, at := range added {
		if done, ok := w.done[id]; ok {
			lat = append(lat, done.Sub(at).Seconds()*1000)
			rows++
		}
	}
	writes := w.writes
	w.mu.Unlock()
	slices.Sort(lat)
	at := func(q float64) float64 { return lat[int(q*float64(len(lat)-1))] }
	var reqs []time.Time
	for _, r := range fake.Requests() {
		if strings.HasSuffix(r.Path, "/records") && r.Method != http.MethodGet {
			reqs = append(reqs, r.Time)
		}
	}
	perSecond := float64(len(reqs)) / reqs[len(reqs)-1].Sub(reqs[0]).Seconds()
	ms := []metric{{"p50_ms", at(0.5)}, {"p99_ms", at(0.99)}, {"max_ms", at(1)},
		{"rows/request", float64(rows) / float64(len(reqs))}, {"requests/s", perSecond}, {"writes", float64(writes)}, {"requests", float64(len(reqs))}}
	line := fmt.Sprintf("%s: changes=%d", b.Name(), len(added))
	for _, m := range ms {
		b.ReportMetric(m.value, m.name)
		line += fmt.Sprintf(" %s=%.4g", m.name, m.value)
	}
	fmt.Fprintln(os.Stderr, line)
}
