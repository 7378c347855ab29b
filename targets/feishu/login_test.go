package feishu

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

func TestLogin(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	e.useOAuth()
	e.cfg.OAuth.RefreshToken = ""
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Login(ctx, e.cfg, "127.0.0.1:0", pw)
		pw.Close()
	}()
	var authURL string
	lines := bufio.NewScanner(pr)
	for lines.Scan() {
		if u := strings.TrimSpace(lines.Text()); strings.HasPrefix(u, "http") {
			authURL = u
			break
		}
	}
	require.NotEmpty(t, authURL)
	assert.Contains(t, authURL, "/open-apis/authen/v1/authorize?")
	assert.Contains(t, authURL, "offline_access")
	assert.Contains(t, authURL, "redirect_uri=http%3A%2F%2F127.0.0.1%3A")
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	// Play the browser: the fake's consent page redirects to the loopback
	// listener, which takes the code.
	browser := &http.Client{Timeout: 5 * time.Second}
	resp, err := browser.Get(authURL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), "close this window")
	require.NoError(t, <-done)

	saved := e.tokenFile()
	assert.True(t, e.fake.RefreshTokenLive(saved.RefreshToken))
	e.write(e.writer(), customers, upsertRec(idField(1)))
	assert.Len(t, e.fake.Rows("customers"), 1)
}

func TestLoginRejectsForeignState(t *testing.T) {
	got := make(chan callback, 1)
	h := callbackHandler("expected", got)
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/callback?state=other&code=x")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, err = http.Get(srv.URL + "/callback?state=expected&error=access_denied")
	require.NoError(t, err)
	resp.Body.Close()
	cb := <-got
	require.Error(t, cb.err)
	assert.Contains(t, cb.err.Error(), "access_denied")
}

func TestLoginNeedsOAuthAndLoopback(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	err := Login(context.Background(), e.cfg, "127.0.0.1:0", io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "oauth")
	e.useOAuth()
	err = Login(context.Background(), e.cfg, "0.0.0.0:0", io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "loopback")
}
