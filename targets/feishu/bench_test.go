package feishu

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

func benchRows(n, offset int) []replicator.Record {
	recs := make([]replicator.Record, n)
	for i := range recs {
		recs[i] = upsertRec(
			idField(offset+i),
			field("name", val(replicator.KindText, fmt.Sprintf("customer %d", offset+i))),
			field("amount", val(replicator.KindNumeric, "12345.67")),
			field("created", val(replicator.KindTimestampTZ, "2024-01-02T03:04:05.123456+00:00")),
			field("active", val(replicator.KindBool, "true")),
		)
	}
	return recs
}

// BenchmarkUpsertThroughput writes 20 batches of 500 rows at the
// documented 10 requests per second and reports rows per second as a
// fraction of the ceiling, 10 × 500 = 5000 rows/s.
func BenchmarkUpsertThroughput(b *testing.B) {
	fake := feishufake.New(feishufake.Options{RequestsPerSecond: 10})
	defer fake.Close()
	require.NoError(b, fake.AddTable("customers", []feishufake.Column{
		{Name: "id", DataType: "bigint", IsUnique: true},
		{Name: "name", DataType: "text", AllowNull: true},
		{Name: "amount", DataType: "numeric", AllowNull: true},
		{Name: "created", DataType: "timestamptz", AllowNull: true},
		{Name: "active", DataType: "boolean", AllowNull: true},
	}))
	w, err := New(Config{Name: "bench", BaseURL: fake.URL(), WorkspaceID: fake.Options().WorkspaceID, UserAccessToken: fake.AccessToken()}, Deps{})
	require.NoError(b, err)
	spec := replicator.TableSpec{Table: "customers", Key: []string{"id"}, Columns: []string{"id", "name", "amount", "created", "active"}}
	const batches, rows = 20, 500
	batch := make([][]replicator.Record, batches)
	for i := range batch {
		batch[i] = benchRows(rows, i*rows)
	}
	// One request first, so that the limiter's initial token does not
	// flatter the measurement.
	_, err = w.Write(context.Background(), replicator.Batch{Table: spec, Records: batch[0][:1]})
	require.NoError(b, err)
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		for _, recs := range batch {
			rej, err := w.Write(context.Background(), replicator.Batch{Table: spec, Records: recs})
			require.NoError(b, err)
			require.Empty(b, rej)
		}
	}
	perSec := float64(b.N*batches*rows) / time.Since(start).Seconds()
	b.ReportMetric(perSec, "rows/s")
	b.ReportMetric(perSec/5000, "of_ceiling")
	for _, r := range fake.Requests() {
		require.Equal(b, 0, r.Code, "no request was throttled")
	}
}

// BenchmarkUpsertBody measures building one 500-row request body.
func BenchmarkUpsertBody(b *testing.B) {
	recs := benchRows(500, 0)
	for b.Loop() {
		_ = upsertBody(recs)
	}
}
