package app_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// BenchmarkWideRowsMemory streams 400 rows, each with a 1 MiB column the
// mapping does not copy, in one transaction, through the daemon at the
// default in-flight budget (64 MiB) to a Feishu fake that answers every
// write after 2 s. The records must own only their mapped bytes: the
// reported peak RSS stays near the process's baseline, far below the
// 400 MiB the rows weigh. "full" updates the rows of a REPLICA IDENTITY
// FULL table, whose changes also carry the whole old row; "snapshot"
// copies the rows, which must not read the column at all.
//
// Peak RSS is the process's VmHWM (from /proc/self/status), reset by writing
// 5 to /proc/self/clear_refs just before the transaction; the benchmark runs
// in the test process, so the fake and the test's own allocations count too.
func BenchmarkWideRowsMemory(b *testing.B) {
	for _, variant := range []string{"insert", "full", "snapshot"} {
		b.Run(variant, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				wideRowsMemory(b, variant)
			}
		})
	}
}

func wideRowsMemory(b *testing.B, variant string) {
	const rows = 400
	b.StopTimer()
	e := newNamedEnv(b, fmt.Sprintf("bench_wide_%d", time.Now().UnixNano()),
		`CREATE TABLE wide (id bigint PRIMARY KEY, n integer, blob text);
		 ALTER TABLE wide ALTER COLUMN blob SET STORAGE EXTERNAL;`)
	insert := fmt.Sprintf(`INSERT INTO wide SELECT g, %%d, repeat(md5(g::text), 32768) FROM generate_series(1, %d) g`, rows)
	switch variant {
	case "full":
		e.exec(`ALTER TABLE wide REPLICA IDENTITY FULL`)
		e.exec(fmt.Sprintf(insert, 0))
	case "snapshot":
		e.exec(fmt.Sprintf(insert, 1))
	}
	fake := feishufake.New(feishufake.Options{RequestsPerSecond: -1, SlowDelay: 2 * time.Second})
	defer fake.Close()
	require.NoError(b, fake.AddTable("wide", []feishufake.Column{
		{Name: "id", DataType: "bigint", IsPrimaryKey: true},
		{Name: "n", DataType: "integer", AllowNull: true},
	}))
	cfg := e.configWithTargets(fmt.Sprintf(`
  lark:
    type: feishu
    base_url: %s
    workspace_id: %s
    user_access_token: %s
`, fake.URL(), fake.Options().WorkspaceID, fake.AccessToken()), `
  - source: wide
    target: lark
    table: wide
    columns: {id: id, n: n}
    snapshot: `+strconv.FormatBool(variant == "snapshot")+`
`)
	require.Equal(b, int64(64<<20), cfg.Pipeline.MaxInFlightBytes, "the default budget")
	// The default: the test environment's 50 ms would send a request for
	// every few rows, each answered after 2 s.
	cfg.Pipeline.FlushInterval = time.Second
	var daemon *running
	if variant != "snapshot" {
		daemon = e.startStreamingWith(cfg, monitor.New(prometheus.NewRegistry()), io.Discard)
	}
	fake.SetFaultRate(1, feishufake.FaultSlow)

	debug.FreeOSMemory()
	baseline := procStatusKiB(b, "VmRSS")
	reset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	before := procStatusKiB(b, "VmHWM")
	var peakHeap atomic.Uint64
	stopSampling := sampleHeap(&peakHeap)
	b.StartTimer()
	switch variant {
	case "insert":
		e.exec(fmt.Sprintf(insert, 1))
	case "full":
		e.exec(`UPDATE wide SET n = 1`)
	case "snapshot":
		daemon = e.start(cfg)
	}
	landed := func() bool {
		got := fake.Rows("wide")
		if len(got) != rows {
			return false
		}
		for _, r := range got {
			if fmt.Sprint(r["n"]) != "1" {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(10 * time.Minute); !landed(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the transaction did not land in the target within 10 minutes")
		}
	}
	b.StopTimer()
	stopSampling()
	peak := procStatusKiB(b, "VmHWM")
	require.NoError(b, daemon.stop())

	mib := func(kib int64) float64 { return float64(kib) / 1024 }
	how := "VmHWM reset before the transaction"
	if !reset {
		// Without clear_refs the high-water mark covers the whole process
		// life: the growth over it is what this run added at most.
		how = "VmHWM growth (clear_refs not permitted)"
		peak = baseline + max(0, peak-before)
	}
	b.ReportMetric(mib(peak), "peak_rss_MiB")
	b.ReportMetric(mib(baseline), "baseline_rss_MiB")
	b.ReportMetric(float64(peakHeap.Load())/(1<<20), "peak_heap_MiB")
	fmt.Fprintf(os.Stderr, "wide rows (%s): peak RSS %.1f MiB (%s), baseline RSS %.1f MiB, peak heap %.1f MiB\n",
		variant, mib(peak), how, mib(baseline), float64(peakHeap.Load())/(1<<20))
}

// procStatusKiB reads a "kB" field of /proc/self/status.
func procStatusKiB(b *testing.B, field string) int64 {
	b.Helper()
	data, err := os.ReadFile("/proc/self/status")
	require.NoError(b, err)
	for _, line := range bytes.Split(data, []byte("\n")) {
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok || string(name) != field {
			continue
		}
		kib, err := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte(" kB"))), 10, 64)
		require.NoError(b, err, "%s", line)
		return kib
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}
