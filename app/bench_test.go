package app_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func benchRows() int {
	if n, err := strconv.Atoi(os.Getenv("REPLICATOR_BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// BenchmarkStreamVersusRecvlogical drains the same committed row changes
// twice: with pg_recvlogical (pgoutput to /dev/null: the ceiling of reading
// from PostgreSQL) and through the whole daemon into the in-memory target.
// The changes are one transaction, so the run also shows that a transaction
// larger than the in-flight budget passes in bounded memory (peak heap).
func BenchmarkStreamVersusRecvlogical(b *testing.B) {
	rows := benchRows()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newNamedEnv(b, fmt.Sprintf("bench_%d", time.Now().UnixNano()), itemsSchema)
		e.mem.Discard = true
		e.exec(`CREATE PUBLICATION pub_` + e.name + ` FOR TABLE items`)
		e.exec(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, "recv_"+e.name)
		e.exec(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, "recv2_"+e.name)
		e.exec(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, "slot_"+e.name)
		e.exec(fmt.Sprintf(`INSERT INTO items (id, name, qty, price, doc, at, flag)
		  SELECT g, 'name ' || g, g %% 1000, g * 1.5, jsonb_build_object('g', g), now(), g %% 2 = 0
		  FROM generate_series(1, %d) g`, rows))
		end := e.currentLSN()
		e.exec(`CHECKPOINT`)

		b.StartTimer()
		recvBefore := recvlogical(b, e, "recv_"+e.name, end)

		var peak atomic.Uint64
		stopSampling := sampleHeap(&peak)
		pipeStart := time.Now()
		daemon := e.start(e.config(itemsMapping + "    snapshot: false\n"))
		deadline := time.Now().Add(20 * time.Minute)
		for {
			if _, writes := e.mem.Stats(); writes >= rows || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		pipe := time.Since(pipeStart)
		stopSampling()
		// Reading the WAL a second time finds it in the page cache, as the
		// daemon did; the faster of the two runs is the ceiling.
		recv := min(recvBefore, recvlogical(b, e, "recv2_"+e.name, end))
		b.StopTimer()
		_, writes := e.mem.Stats()
		require.Equal(b, rows, writes)
		require.NoError(b, daemon.stop())

		recvRate := float64(rows) / recv.Seconds()
		pipeRate := float64(rows) / pipe.Seconds()
		b.ReportMetric(recvRate, "recvlogical_rows/s")
		b.ReportMetric(pipeRate, "pipeline_rows/s")
		b.ReportMetric(pipeRate/recvRate, "ratio")
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak_heap_MiB")
		fmt.Fprintf(os.Stderr, "rows=%d recvlogical=%.0f rows/s pipeline=%.0f rows/s ratio=%.2f peak_heap=%.1f MiB\n",
			rows, recvRate, pipeRate, pipeRate/recvRate, float64(peak.Load())/(1<<20))
		b.StartTimer()
	}
}

// recvlogical drains a slot up to end with pg_recvlogical into /dev/null.
func recvlogical(b *testing.B, e *env, slot, end string) time.Duration {
	start := time.Now()
	cmd := exec.Command(filepath.Join(cluster.BinDir(), "pg_recvlogical"), "-d", e.dsn, "--slot", slot, "--start",
		"-o", "proto_version=1", "-o", "publication_names=pub_"+e.name, "--endpos", end, "--no-loop", "-f", os.DevNull)
	out, err := cmd.CombinedOutput()
	require.NoError(b, err, "pg_recvlogical: %s", out)
	return time.Since(start)
}

func sampleHeap(peak *atomic.Uint64) func() {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}
