package feishu

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

var errLeaseOver = errors.New("the test's lease is over")

// scriptedLease answers Left from script, one entry per call, the last one
// repeated; an entry of 0 is a lease that has ended.
type scriptedLease struct {
	mu     sync.Mutex
	script []time.Duration
	calls  int
}

func (l *scriptedLease) Left() (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	left := l.script[min(l.calls, len(l.script)-1)]
	l.calls++
	if left <= 0 {
		return 0, errLeaseOver
	}
	return left, nil
}

// refreshDeadlines records, as each refresh leaves, when it must be
// answered by.
type refreshDeadlines struct {
	next http.RoundTripper
	mu   sync.Mutex
	sent []time.Time
	by   []time.Time // zero: no deadline
}

func (d *refreshDeadlines) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, tokenEndpoint) {
		by, _ := r.Context().Deadline()
		d.mu.Lock()
		d.sent, d.by = append(d.sent, time.Now()), append(d.by, by)
		d.mu.Unlock()
	}
	return d.next.RoundTrip(r)
}

// A lease about to end cannot cover a refresh and the save of its answer:
// the refresh is never sent (the refresh token stays unspent, and the
// token file is not marked as refreshing), and the write fails with the
// lease's end.
func TestNoRefreshWhenTheLeaseCannotCoverIt(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	e.useOAuth()
	e.cfg.Lease = &scriptedLease{script: []time.Duration{500 * time.Millisecond, 300 * time.Millisecond, 100 * time.Millisecond, 0}}
	_, err := e.writer().Write(t.Context(), replicator.Batch{Table: customers, Records: []replicator.Record{upsertRec(idField(1))}})
	require.ErrorIs(t, err, errLeaseOver)
	assert.Contains(t, err.Error(), "not refreshed")
	assert.Empty(t, e.requests(http.MethodPost, "/token"), "a refresh reached the token endpoint")
	assert.True(t, e.fake.RefreshTokenLive(e.cfg.OAuth.RefreshToken))
	_, err = os.Stat(filepath.Join(e.cfg.StateDir, TokenName("lark")))
	assert.True(t, os.IsNotExist(err), "the token file marks a refresh that was never sent")
}

// Under a fresh lease the refresh goes out, answered and saved.
func TestRefreshUnderAFreshLease(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	e.useOAuth()
	e.cfg.Lease = &scriptedLease{script: []time.Duration{time.Hour}}
	e.write(e.writer(), customers, upsertRec(idField(1)))
	assert.Len(t, e.requests(http.MethodPost, "/token"), 1)
	assert.True(t, e.fake.RefreshTokenLive(e.tokenFile().RefreshToken))
}

// A lease too short for a refresh is waited on: once renewed, the refresh
// goes out, with a deadline that leaves the lease's last leaseSaveShare for
// saving the answer, however long the request timeout.
func TestRefreshWaitsForARenewedLeaseAndEndsWithinIt(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	e.useOAuth()
	e.cfg.RequestTimeout = 30 * time.Second
	const renewed = 4 * time.Second
	e.cfg.Lease = &scriptedLease{script: []time.Duration{500 * time.Millisecond, renewed}}
	d := &refreshDeadlines{next: http.DefaultTransport}
	e.http = &http.Client{Transport: d}
	e.write(e.writer(), customers, upsertRec(idField(1)))
	require.Len(t, d.by, 1, "one refresh")
	require.False(t, d.by[0].IsZero(), "the refresh went out without a deadline")
	assert.False(t, d.by[0].After(d.sent[0].Add(renewed-leaseSaveShare)),
		"the refresh may be answered %v after it left, when the lease has only %v for it", d.by[0].Sub(d.sent[0]), renewed-leaseSaveShare)
	assert.True(t, e.fake.RefreshTokenLive(e.tokenFile().RefreshToken))
}

// A refresh still unanswered when the lease's share for it runs out is cut
// off and sent again under the renewed lease, as a request that timed out
// is.
func TestRefreshCutAtTheLeaseIsTriedAgain(t *testing.T) {
	e := newEnv(t, feishufake.Options{SlowDelay: 5 * time.Second})
	e.addCustomers()
	e.useOAuth()
	e.cfg.RequestTimeout = 30 * time.Second
	e.cfg.Lease = &scriptedLease{script: []time.Duration{leaseSaveShare + minRefreshTime + 500*time.Millisecond}}
	e.fake.InjectTokenFaults(feishufake.FaultSlow)
	e.write(e.writer(), customers, upsertRec(idField(1)))
	assert.Contains(t, e.logs.String(), "trying again under a renewed lease")
	assert.True(t, e.fake.RefreshTokenLive(e.tokenFile().RefreshToken))
	assert.Len(t, e.fake.Rows("customers"), 1)
}
