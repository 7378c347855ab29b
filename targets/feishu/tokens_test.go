package feishu

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// savedFirst checks, as each API request leaves, that the access token it
// carries is the one already saved in the token file.
type savedFirst struct {
	path       string
	next       http.RoundTripper
	checked    atomic.Int64
	mismatches atomic.Int64
}

func (s *savedFirst) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "/apaas/") {
		s.checked.Add(1)
		b, err := os.ReadFile(s.path)
		if err != nil || !strings.Contains(string(b), strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")) {
			s.mismatches.Add(1)
		}
	}
	return s.next.RoundTrip(r)
}

func (e *env) checkSavedFirst() *savedFirst {
	sf := &savedFirst{path: filepath.Join(e.cfg.StateDir, "feishu-lark.token.json"), next: http.DefaultTransport}
	e.http = &http.Client{Transport: sf}
	return sf
}

func TestTokenRefreshRotatesAndSavesFirst(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	e.useOAuth()
	first := e.cfg.OAuth.RefreshToken
	sf := e.checkSavedFirst()
	w := e.writer()
	e.write(w, customers, upsertRec(idField(1)))

	saved := e.tokenFile()
	assert.False(t, e.fake.RefreshTokenLive(first), "the configured refresh token was spent")
	assert.True(t, e.fake.RefreshTokenLive(saved.RefreshToken), "the saved one is the live one")
	assert.Equal(t, e.fake.Options().AppID, saved.AppID)
	assert.WithinDuration(t, time.Now().Add(2*time.Hour), saved.AccessTokenExpiresAt, time.Minute)
	assert.False(t, saved.RefreshTokenExpiresAt.IsZero())
	info, err := os.Stat(filepath.Join(e.cfg.StateDir, "feishu-lark.token.json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	// The token expires early: the API refuses it, the writer refreshes
	// once and retries.
	e.fake.ExpireTokens()
	e.write(w, customers, upsertRec(idField(2)))
	again := e.tokenFile()
	assert.NotEqual(t, saved.RefreshToken, again.RefreshToken)
	assert.True(t, e.fake.RefreshTokenLive(again.RefreshToken))
	assert.Len(t, e.requests(http.MethodPost, "/token"), 2)
	assert.Len(t, e.fake.Rows("customers"), 2)
	assert.Equal(t, 1.0, counter(e.m.Errors, "lark", "token_expired"))
	assert.Equal(t, int64(0), sf.mismatches.Load())
	assert.Equal(t, int64(3), sf.checked.Load())

	for _, secret := range []string{first, saved.RefreshToken, saved.AccessToken, again.RefreshToken, e.cfg.OAuth.AppSecret} {
		assert.NotContains(t, e.logs.String(), secret)
	}
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	e := newEnv(t, feishufake.Options{TokenTTL: 2 * time.Second})
	e.addCustomers()
	e.useOAuth()
	e.cfg.TokenRefreshMargin = 800 * time.Millisecond
	w := e.writer()
	e.write(w, customers, upsertRec(idField(1)))
	time.Sleep(1300 * time.Millisecond)
	e.write(w, customers, upsertRec(idField(2)))
	assert.Len(t, e.requests(http.MethodPost, "/token"), 2, "refreshed ahead of expiry")
	for _, r := range e.fake.Requests() {
		assert.NotEqual(t, 99991677, r.Code, "no request went out with an expired token")
	}
}

// A token that lives shorter than the configured margin is refreshed once
// per lifetime (ahead of expiry by half of it), not before every request.
func TestShortLivedTokenRefreshedOncePerLifetime(t *testing.T) {
	e := newEnv(t, feishufake.Options{TokenTTL: 20 * time.Second})
	e.addCustomers()
	e.useOAuth()
	w := e.writer()
	for i := range 5 {
		e.write(w, customers, upsertRec(idField(i)))
	}
	assert.Len(t, e.requests(http.MethodPost, "/token"), 1, "one refresh for five writes within half the token's 20 s lifetime")
}

func TestConcurrentRefreshIsSerialized(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	e.useOAuth()
	e.cfg.MaxBatchRows = 1
	e.cfg.MaxConcurrentRequests = 8
	w := e.writer()
	var recs []replicator.Record
	for i := range 32 {
		recs = append(recs, upsertRec(idField(i)))
	}
	e.write(w, customers, recs...)
	assert.Len(t, e.requests(http.MethodPost, "/token"), 1)
	e.fake.ExpireTokens()
	e.write(w, customers, recs...)
	assert.Len(t, e.requests(http.MethodPost, "/token"), 2, "one refresh however many requests saw the expiry")
}

func TestRestartUsesSavedToken(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	e.useOAuth()
	e.write(e.writer(), customers, upsertRec(idField(1)))
	saved := e.tokenFile()

	// The configuration still holds the first, now spent, refresh token:
	// the restarted writer uses the saved access token, then refreshes
	// with the saved refresh token.
	w := e.writer()
	e.write(w, customers, upsertRec(idField(2)))
	assert.Len(t, e.requests(http.MethodPost, "/token"), 1, "the saved access token is still good")
	e.fake.ExpireTokens()
	e.write(w, customers, upsertRec(idField(3)))
	assert.Len(t, e.fake.Rows("customers"), 3)
	assert.False(t, e.fake.RefreshTokenLive(saved.RefreshToken), "the restart refreshed from the saved token")
	assert.True(t, e.fake.RefreshTokenLive(e.tokenFile().RefreshToken))

	// Without the file, the spent configured token cannot work.
	require.NoError(t, os.Remove(filepath.Join(e.cfg.StateDir, "feishu-lark.token.json")))
	_, err := e.writer().Write(context.Background(), replicator.Batch{Table: customers, Records: []replicator.Record{upsertRec(idField(4))}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "20073")
	assert.Contains(t, err.Error(), "replicator feishu-login --config FILE --target lark")
}

func TestRefreshAnswerLost(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	e.useOAuth()
	w := e.writer()
	e.fake.InjectTokenFaults(feishufake.FaultLostAnswer)
	_, err := w.Write(context.Background(), replicator.Batch{Table: customers, Records: []replicator.Record{upsertRec(idField(1))}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "already used")
	assert.Contains(t, err.Error(), "feishu-login")
	assert.NotContains(t, err.Error(), e.cfg.OAuth.RefreshToken)
}

func TestRefreshRetriesServerErrors(t *testing.T) {
	e := newEnv(t, feishufake.Options{SlowDelay: time.Second})
	e.addCustomers()
	e.useOAuth()
	e.cfg.RequestTimeout = 200 * time.Millisecond
	w := e.writer()
	e.fake.InjectTokenFaults(feishufake.FaultServerError, feishufake.FaultDrop, feishufake.FaultSlow)
	e.write(w, customers, upsertRec(idField(1)))
	assert.Len(t, e.fake.Rows("customers"), 1)
	// The slow call is logged once the fake notices the client left.
	assert.Eventually(t, func() bool { return len(e.requests(http.MethodPost, "/token")) == 4 }, 2*time.Second, 10*time.Millisecond)
	assert.True(t, e.fake.RefreshTokenLive(e.tokenFile().RefreshToken))
}

func TestRefreshFatal(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	batch := replicator.Batch{Table: customers, Records: []replicator.Record{upsertRec(idField(1))}}

	e.useOAuth()
	e.fake.RevokeTokens()
	_, err := e.writer().Write(context.Background(), batch)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "20064")
	assert.Contains(t, err.Error(), "authorize again with `replicator feishu-login --config FILE --target lark`")

	e.useOAuth()
	e.cfg.OAuth.AppSecret = "wrong-secret-value"
	e.cfg.StateDir = t.TempDir()
	_, err = e.writer().Write(context.Background(), batch)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "app_secret")
	assert.NotContains(t, err.Error(), "wrong-secret-value")
	assert.NotContains(t, err.Error(), e.cfg.OAuth.RefreshToken)
	assert.NotContains(t, e.logs.String(), "wrong-secret-value")
}

func TestNewRequiresARefreshToken(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.useOAuth()
	e.cfg.OAuth.RefreshToken = ""
	_, err := New(e.cfg, Deps{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "feishu-login")

	require.NoError(t, os.WriteFile(filepath.Join(e.cfg.StateDir, "feishu-lark.token.json"), []byte("{"), 0o600))
	_, err = New(e.cfg, Deps{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "damaged")
}

func TestConfigValidation(t *testing.T) {
	_, err := New(Config{Name: "a/b", UserAccessToken: "x", OAuth: OAuth{AppID: "cli"}, MaxBatchRows: 501}, Deps{})
	require.Error(t, err)
	for _, want := range []string{"target name", "workspace_id", "sets both", "max_batch_rows"} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), `"x"`)
}
