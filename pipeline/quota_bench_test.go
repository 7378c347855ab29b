package pipeline

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/mapping"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/targets/feishu"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
	"github.com/replicator-cdc/replicator/targets/gptbots"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

// quotaSeconds is how long, at the ceiling, each quota benchmark writes:
// long enough that the first and last answers' latency weigh little.
// REPLICATOR_BENCH_QUOTA_SECONDS overrides it.
func quotaSeconds() int {
	if n, err := strconv.Atoi(os.Getenv("REPLICATOR_BENCH_QUOTA_SECONDS")); err == nil && n > 0 {
		return n
	}
	return 25
}

var quotaCases = []struct {
	latency time.Duration
	tables  int
}{{300 * time.Millisecond, 1}, {300 * time.Millisecond, 4}, {time.Second, 1}, {time.Second, 4}}

func quotaTables(n int) []*mapping.Table {
	tables := make([]*mapping.Table, n)
	for i := range tables {
		rule := &mapping.Rule{Source: fmt.Sprintf("public.t%d", i), Target: "api", Table: fmt.Sprintf("t%d", i), Key: []string{"id"},
			Columns: []mapping.ColumnRule{{Source: "id", Target: "id"}, {Source: "body", Target: "body"}}, OnDelete: mapping.DeleteRow}
		tables[i] = &mapping.Table{Rule: rule, Spec: rule.Spec()}
	}
	return tables
}

// driveQuota streams rows upserts, one transaction per 100, spread over
// the tables, through a pipeline into w, and returns how long it took
// until every transaction was acknowledged. mid runs halfway.
func driveQuota(b *testing.B, w replicator.Writer, tables []*mapping.Table, rows int, mid func()) time.Duration {
	routes := make([]Route, len(tables))
	for i, t := range tables {
		routes[i] = Route{Rule: t.Rule, Target: "api", Writer: w}
	}
	p := New(routes, nil, monitor.New(prometheus.NewRegistry()),
		Options{MaxInFlightBytes: 256 << 20, FlushInterval: 200 * time.Millisecond, BatchRows: 500, BatchBytes: 8 << 20, TickInterval: 100 * time.Millisecond},
		quietLogger())
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tr := NewTracker(0)
	start := time.Now()
	for i := range rows {
		if i%100 == 0 {
			if i > 0 {
				p.Commit(replicator.LSN(i))
			}
			p.Begin(tr, time.Now())
		}
		require.NoError(b, p.Add(ctx, tables[i%len(tables)], upsertOf(i, i)))
		if i == rows/2 && mid != nil {
			mid()
		}
	}
	p.Commit(replicator.LSN(rows))
	require.NoError(b, p.WaitFor(ctx, tr.Idle))
	require.Equal(b, replicator.LSN(rows), tr.Acknowledged())
	return time.Since(start)
}

// report prints a quota figure as metrics and on stderr.
func report(b *testing.B, name string, rows int, took time.Duration, ceiling float64, extra map[string]float64) {
	rate := float64(rows) / took.Seconds()
	b.ReportMetric(rate, "rows/s")
	b.ReportMetric(rate/ceiling, "of_ceiling")
	line := fmt.Sprintf("%s: rows=%d %.0f rows/s = %.3f of %.0f", name, rows, rate, rate/ceiling, ceiling)
	for k, v := range extra {
		b.ReportMetric(v, k)
		line += fmt.Sprintf(" %s=%g", k, v)
	}
	fmt.Fprintln(os.Stderr, line)
}

func feishuQuotaFake(b *testing.B, latency time.Duration, tables int) (*feishufake.Server, *feishu.Writer) {
	fake := feishufake.New(feishufake.Options{RequestsPerSecond: 10, Latency: latency})
	b.Cleanup(fake.Close)
	specs := make([]replicator.TableSpec, 0, tables)
	for _, t := range quotaTables(tables) {
		require.NoError(b, fake.AddTable(t.Spec.Table, []feishufake.Column{
			{Name: "id", DataType: "bigint", IsUnique: true}, {Name: "body", DataType: "text", AllowNull: true},
		}))
		specs = append(specs, t.Spec)
	}
	w, err := feishu.New(feishu.Config{Name: "api", BaseURL: fake.URL(), WorkspaceID: fake.Options().WorkspaceID,
		UserAccessToken: fake.AccessToken()}, feishu.Deps{})
	require.NoError(b, err)
	require.NoError(b, w.Prepare(context.Background(), specs))
	return fake, w
}

// feishuWrites are the record writes the fake logged.
func feishuWrites(fake *feishufake.Server) []feishufake.Request {
	var out []feishufake.Request
	for _, r := range fake.Requests() {
		if strings.HasSuffix(r.Path, "/records") && r.Method != "GET" {
			out = append(out, r)
		}
	}
	return out
}

// BenchmarkFeishuQuota is issue 9's benchmark 1: the Feishu fake enforcing
// 10 requests in any second and answering after 300 ms or 1 s; one table,
// and four tables sharing one app. It reports rows/s as a share of the
// ceiling of 10 × 500 = 5,000, the requests the fake refused as over its
// limit, the most requests that arrived in any one second, and, with a
// 429 injected halfway ("throttled"), the requests that arrived before
// the reset the 429 named.
func BenchmarkFeishuQuota(b *testing.B) {
	rows := 5000 * quotaSeconds()
	for _, c := range quotaCases {
		b.Run(fmt.Sprintf("latency=%s/tables=%d", c.latency, c.tables), func(b *testing.B) {
			for range b.N {
				fake, w := feishuQuotaFake(b, c.latency, c.tables)
				took := driveQuota(b, w, quotaTables(c.tables), rows, nil)
				writes := feishuWrites(fake)
				report(b, b.Name(), rows, took, 5000, map[string]float64{
					"over_limit": float64(feishuThrottled(writes, false)), "max_per_second": float64(feishufake.MaxPerWindow(writes, time.Second)),
				})
			}
		})
	}
	b.Run("throttled/latency=300ms/tables=1", func(b *testing.B) {
		for range b.N {
			fake, w := feishuQuotaFake(b, 300*time.Millisecond, 1)
			took := driveQuota(b, w, quotaTables(1), rows/5, func() { fake.InjectFaults(feishufake.FaultThrottle) })
			writes := feishuWrites(fake)
			early := 0
			reset := time.Duration(fake.Options().ThrottleReset) * time.Second
			for _, t := range writes {
				if t.Fault != feishufake.FaultThrottle {
					continue
				}
				for _, r := range writes {
					if r.Time.After(t.Time) && r.Time.Before(t.Time.Add(reset)) {
						early++
					}
				}
			}
			report(b, b.Name(), rows/5, took, 5000, map[string]float64{
				"injected_429": float64(feishuThrottled(writes, true)), "before_reset": float64(early),
				"over_limit": float64(feishuThrottled(writes, false)),
			})
		}
	})
}

// feishuThrottled counts 429 answers: injected ones, or the fake's own
// refusals of requests over its limit.
func feishuThrottled(reqs []feishufake.Request, injected bool) int {
	n := 0
	for _, r := range reqs {
		if r.Status == 429 && (r.Fault == feishufake.FaultThrottle) == injected {
			n++
		}
	}
	return n
}

func gptbotsQuotaFake(b *testing.B, latency time.Duration, tables int) (*gptbotsfake.Server, *gptbots.Writer) {
	fake := gptbotsfake.New(gptbotsfake.Options{Latency: latency})
	b.Cleanup(fake.Close)
	specs := make([]replicator.TableSpec, 0, tables)
	for _, t := range quotaTables(tables) {
		require.NoError(b, fake.AddTable(t.Spec.Table, []gptbotsfake.Field{
			{Name: "id", Type: gptbotsfake.TypeInt, Unique: true}, {Name: "body", Type: gptbotsfake.TypeText},
		}))
		specs = append(specs, t.Spec)
	}
	w, err := gptbots.New(gptbots.Config{Name: "api", BaseURL: fake.URL(), APIKey: fake.Options().APIKey,
		RequestsPerSecond: float64(fake.Options().RequestsPerSecond)}, gptbots.Deps{})
	require.NoError(b, err)
	require.NoError(b, w.Prepare(context.Background(), specs))
	return fake, w
}

func gptbotsWrites(fake *gptbotsfake.Server) []gptbotsfake.Request {
	var out []gptbotsfake.Request
	for _, r := range fake.Requests() {
		if r.Path != gptbotsfake.PagePath {
			out = append(out, r)
		}
	}
	return out
}

func gptbotsThrottled(reqs []gptbotsfake.Request, injected bool) int {
	n := 0
	for _, r := range reqs {
		if r.Status == 429 && (r.Fault == gptbotsfake.FaultThrottle) == injected {
			n++
		}
	}
	return n
}

// BenchmarkGPTBotsQuota is issue 9's benchmark 2: the same as
// BenchmarkFeishuQuota for GPTBots at the fake's rate (5 calls per second
// by default), whose ceiling is rate × 100 items.
func BenchmarkGPTBotsQuota(b *testing.B) {
	perSecond := float64(gptbotsfake.MaxUpdateItems * 5)
	rows := int(perSecond) * quotaSeconds()
	for _, c := range quotaCases {
		b.Run(fmt.Sprintf("latency=%s/tables=%d", c.latency, c.tables), func(b *testing.B) {
			for range b.N {
				fake, w := gptbotsQuotaFake(b, c.latency, c.tables)
				took := driveQuota(b, w, quotaTables(c.tables), rows, nil)
				writes := gptbotsWrites(fake)
				report(b, b.Name(), rows, took, perSecond, map[string]float64{
					"over_limit": float64(gptbotsThrottled(writes, false)), "max_per_second": float64(gptbotsfake.MaxPerWindow(writes, time.Second)),
				})
			}
		})
	}
	b.Run("throttled/latency=300ms/tables=1", func(b *testing.B) {
		for range b.N {
			fake, w := gptbotsQuotaFake(b, 300*time.Millisecond, 1)
			took := driveQuota(b, w, quotaTables(1), rows/5, func() { fake.InjectFaults(gptbotsfake.FaultThrottle) })
			writes := gptbotsWrites(fake)
			early := 0
			reset := time.Duration(fake.Options().RetryAfter) * time.Second
			for _, t := range writes {
				if t.Fault != gptbotsfake.FaultThrottle {
					continue
				}
				for _, r := range writes {
					if r.Time.After(t.Time) && r.Time.Before(t.Time.Add(reset)) {
						early++
					}
				}
			}
			report(b, b.Name(), rows/5, took, perSecond, map[string]float64{
				"injected_429": float64(gptbotsThrottled(writes, true)), "before_reset": float64(early),
				"over_limit": float64(gptbotsThrottled(writes, false)),
			})
		}
	})
}
