package feishu

import (
	"context"
	"fmt"
	"net/http"
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
		_ = appendUpsertBody(nil, recs)
	}
}

// latentTransport delays every answer, as the real API's answers take
// hundreds of milliseconds.
type latentTransport struct {
	rt    http.RoundTripper
	delay time.Duration
}

func (l latentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(r)
	time.Sleep(l.delay)
	return resp, err
}

// BenchmarkRejectIsolation writes 10,000 rows in one batch at the API's
// 10 requests per second, with 200 ms answers, and reports the record
// requests and seconds it takes: clean; with 1% of the rows sending a text
// the bigint column refuses, all the same text or each its own, which the
// writer finds before sending; the same without the table's schema, so
// that only the API's answers (which quote the value) isolate them; and
// with 1% refused without naming a value (a unique violation), which only
// splitting can isolate. Run with -benchtime=1x.
func BenchmarkRejectIsolation(b *testing.B) {
	for _, c := range []struct {
		name               string
		bad                int
		distinct, dup, raw bool
	}{
		{"clean", 0, false, false, false},
		{"1pct_same_value", 100, false, false, false},
		{"1pct_distinct_values", 100, true, false, false},
		{"1pct_distinct_values_unchecked", 100, true, false, true},
		{"1pct_unnamed", 100, false, true, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				requests, seconds := isolationRun(b, c.bad, c.distinct, c.dup, c.raw)
				b.ReportMetric(float64(requests), "requests")
				b.ReportMetric(seconds, "seconds")
			}
		})
	}
}

// isolationRun writes the rows and returns the record requests and seconds.
// Unless raw, the writer has read the table's schema first, as Prepare does
// in the daemon.
func isolationRun(b *testing.B, bad int, distinct, dup, raw bool) (int, float64) {
	fake := feishufake.New(feishufake.Options{RequestsPerSecond: 10})
	defer fake.Close()
	require.NoError(b, fake.AddTable("customers", []feishufake.Column{
		{Name: "id", DataType: "bigint", IsUnique: true},
		{Name: "name", DataType: "text", AllowNull: true},
		{Name: "big", DataType: "bigint", AllowNull: true},
		{Name: "email", DataType: "text", AllowNull: true, IsUnique: true},
	}))
	client := &http.Client{Transport: latentTransport{rt: http.DefaultTransport.(*http.Transport).Clone(), delay: 200 * time.Millisecond}}
	w, err := New(Config{Name: "bench", BaseURL: fake.URL(), WorkspaceID: fake.Options().WorkspaceID, UserAccessToken: fake.AccessToken()}, Deps{HTTPClient: client})
	require.NoError(b, err)
	spec := replicator.TableSpec{Table: "customers", Key: []string{"id"}, Columns: []string{"id", "name", "big", "email"}}
	if !raw {
		require.NoError(b, w.Prepare(context.Background(), []replicator.TableSpec{spec}))
	}
	taken := upsertRec(idField(-1), field("name", val(replicator.KindText, "owner")), field("big", val(replicator.KindInt, "0")), field("email", val(replicator.KindText, "taken")))
	_, err = w.Write(context.Background(), replicator.Batch{Table: spec, Records: []replicator.Record{taken}})
	require.NoError(b, err)
	recs := isolationRows(10_000, bad, distinct)
	for i := range recs {
		email := fmt.Sprintf("c%d@x", i)
		if dup && recs[i].Fields[2].Value.Kind == replicator.KindText {
			recs[i].Fields[2] = field("big", val(replicator.KindInt, "1"))
			email = "taken"
		}
		recs[i].Fields = append(recs[i].Fields, field("email", val(replicator.KindText, email)))
	}
	before := len(fake.Requests())
	start := time.Now()
	rej, err := w.Write(context.Background(), replicator.Batch{Table: spec, Records: recs})
	seconds := time.Since(start).Seconds()
	require.NoError(b, err)
	require.Len(b, rej, bad)
	landed := 10_000 - bad
	if !dup && !raw {
		landed = 10_000 // the bad values are left out, the rows land
	}
	require.Len(b, fake.Rows("customers"), landed+1)
	return len(fake.Requests()) - before, seconds
}
