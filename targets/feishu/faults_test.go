package feishu

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

func TestRateNeverExceeded(t *testing.T) {
	e := newEnv(t, feishufake.Options{RequestsPerSecond: 20})
	e.addCustomers()
	e.cfg.RequestsPerSecond = 20
	e.cfg.MaxBatchRows = 1
	e.cfg.MaxConcurrentRequests = 8
	w := e.writer()
	var recs []replicator.Record
	for i := range 40 {
		recs = append(recs, upsertRec(idField(i)))
	}
	start := time.Now()
	e.write(w, customers, recs...)
	elapsed := time.Since(start)
	reqs := e.requests(http.MethodPost, "/records")
	require.Len(t, reqs, 40, "no request was throttled")
	assert.LessOrEqual(t, feishufake.MaxPerWindow(reqs, time.Second), 20)
	assert.Greater(t, elapsed, 1900*time.Millisecond, "40 requests at 20/s take about 2s")
	assert.Len(t, e.fake.Rows("customers"), 40)
	assert.Positive(t, counter(e.m.ThrottleWait, "lark"))
}

func TestThrottleHonoursReset(t *testing.T) {
	e := newEnv(t, feishufake.Options{ThrottleReset: 1})
	e.addCustomers()
	w := e.writer()
	e.fake.InjectFaults(feishufake.FaultThrottle)
	e.write(w, customers, upsertRec(idField(1)))
	reqs := e.requests(http.MethodPost, "/records")
	require.Len(t, reqs, 2)
	assert.Equal(t, 99991400, reqs[0].Code)
	assert.GreaterOrEqual(t, reqs[1].Time.Sub(reqs[0].Time), time.Second)
	assert.Len(t, e.fake.Rows("customers"), 1)
	assert.Equal(t, 1.0, counter(e.m.Errors, "lark", "throttled"))
	assert.GreaterOrEqual(t, counter(e.m.ThrottleWait, "lark"), 0.99)
}

func TestRetriesConverge(t *testing.T) {
	e := newEnv(t, feishufake.Options{SlowDelay: 2 * time.Second, Seed: 7})
	e.addCustomers()
	e.cfg.RequestTimeout = 150 * time.Millisecond
	e.cfg.MaxBatchRows = 7
	w := e.writer()
	e.fake.InjectFaults(feishufake.FaultDrop, feishufake.FaultLostAnswer, feishufake.FaultServerError, feishufake.FaultSlow)
	e.fake.SetFaultRate(0.3, feishufake.FaultDrop, feishufake.FaultLostAnswer, feishufake.FaultServerError, feishufake.FaultSlow)
	rng := rand.New(rand.NewPCG(1, 2))
	want := make(map[string]string)
	for batch := range 8 {
		seen := make(map[int]bool)
		var recs []replicator.Record
		for range 25 {
			id := rng.IntN(60)
			if seen[id] {
				continue
			}
			seen[id] = true
			key := fmt.Sprint(id)
			if rng.IntN(4) == 0 {
				recs = append(recs, deleteRec(idField(id)))
				delete(want, key)
				continue
			}
			name := fmt.Sprintf("v%d-%d", batch, id)
			recs = append(recs, upsertRec(idField(id), field("name", val(replicator.KindText, name))))
			want[key] = name
		}
		e.write(w, customers, recs...)
	}
	e.fake.SetFaultRate(0)
	got := make(map[string]string)
	for id, r := range e.byID("customers", "id") {
		got[id] = r["name"].(string)
	}
	assert.Equal(t, want, got)
	for _, reason := range []string{"connection", "timeout", "server"} {
		assert.Positive(t, counter(e.m.Errors, "lark", reason), reason)
	}
	assert.Contains(t, e.logs.String(), "retrying")
	assert.Contains(t, e.logs.String(), "table=customers")
}

func TestMaxRetriesGivesUp(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	e.cfg.MaxRetries = 2
	w := e.writer()
	e.fake.SetFaultRate(1, feishufake.FaultServerError)
	_, err := w.Write(context.Background(), replicator.Batch{Table: customers, Records: []replicator.Record{upsertRec(idField(1))}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "giving up after 3 attempts")
	assert.Len(t, e.requests(http.MethodPost, "/records"), 3)
}

func TestWriteStopsWithContext(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	w := e.writer()
	e.fake.SetFaultRate(1, feishufake.FaultServerError)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := w.Write(ctx, replicator.Batch{Table: customers, Records: []replicator.Record{upsertRec(idField(1))}})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestFatalCodes(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	batch := replicator.Batch{Table: customers, Records: []replicator.Record{upsertRec(idField(1))}}

	e.cfg.UserAccessToken = e.fake.AccessTokenWithScope("offline_access")
	_, err := e.writer().Write(context.Background(), batch)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "99991679")
	assert.Contains(t, err.Error(), WriteScope)
	assert.Contains(t, err.Error(), "feishu-login")
	assert.NotContains(t, err.Error(), e.cfg.UserAccessToken)

	e.cfg.UserAccessToken = e.fake.AccessToken()
	e.fake.ExpireTokens()
	_, err = e.writer().Write(context.Background(), batch)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "provide a new user_access_token")
	assert.NotContains(t, err.Error(), e.cfg.UserAccessToken)

	e.cfg.UserAccessToken = e.fake.AccessToken()
	e.cfg.WorkspaceID = "ws_wrong"
	e.cfg.MaxRetries = 2
	rej, err := e.writer().Write(context.Background(), batch)
	require.Error(t, err, "an unknown workspace is no fault of the row: the write waits, then gives up")
	assert.Empty(t, rej)
	assert.Contains(t, err.Error(), "ws_wrong")
	e.cfg.MaxRetries = 0

	e.cfg.WorkspaceID = e.fake.Options().WorkspaceID
	e.cfg.BaseURL = e.fake.URL() + "/nowhere"
	_, err = e.writer().Write(context.Background(), batch)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "base_url")
	assert.NotContains(t, e.logs.String(), e.cfg.UserAccessToken)
}
