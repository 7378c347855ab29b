package feishu

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// intentFirst checks, as each refresh leaves, that the token file already
// holds the refresh token it spends, marked as being refreshed.
type intentFirst struct {
	path       string
	next       http.RoundTripper
	refreshes  atomic.Int64
	mismatches atomic.Int64
}

func (s *intentFirst) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, tokenEndpoint) {
		s.refreshes.Add(1)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var grant map[string]string
		var saved tokenFile
		b, ferr := os.ReadFile(s.path)
		if json.Unmarshal(body, &grant) != nil || ferr != nil || json.Unmarshal(b, &saved) != nil ||
			saved.RefreshToken != grant["refresh_token"] || saved.RefreshStartedAt.IsZero() {
			s.mismatches.Add(1)
		}
	}
	return s.next.RoundTrip(r)
}

// A refresh is written ahead: before it goes out, the token file marks the
// refresh token it spends; the pair it brings back is saved unmarked. When
// the answer is lost, whoever loads the file next (a restart, a standby
// taking over) says that a refresh went out and was never saved, at start
// and in the refusal that follows.
func TestRefreshIsWrittenAhead(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	e.useOAuth()
	check := &intentFirst{path: filepath.Join(e.cfg.StateDir, "feishu-lark.token.json"), next: http.DefaultTransport}
	e.http = &http.Client{Transport: check}
	w := e.writer()
	e.write(w, customers, upsertRec(idField(1)))
	assert.True(t, e.tokenFile().RefreshStartedAt.IsZero(), "the refreshed pair is saved without the mark")
	e.fake.ExpireTokens()
	e.write(w, customers, upsertRec(idField(2)))
	assert.True(t, e.tokenFile().RefreshStartedAt.IsZero())
	require.Equal(t, int64(2), check.refreshes.Load())
	require.Zero(t, check.mismatches.Load(), "a refresh went out before the token file marked it")
	assert.NotContains(t, e.logs.String(), "never saved")

	// The answer to the next refresh is lost: the spent token stays saved,
	// marked.
	e.fake.ExpireTokens()
	e.fake.InjectTokenFaults(feishufake.FaultLostAnswer)
	batch := replicator.Batch{Table: customers, Records: []replicator.Record{upsertRec(idField(3))}}
	_, err := w.Write(context.Background(), batch)
	require.ErrorContains(t, err, "already used")
	assert.False(t, e.tokenFile().RefreshStartedAt.IsZero())

	_, err = e.writer().Write(context.Background(), batch)
	require.ErrorContains(t, err, "already used")
	assert.Contains(t, err.Error(), "was never saved")
	assert.Contains(t, err.Error(), "feishu-login")
	assert.Contains(t, e.logs.String(), "its answer never saved")
	require.Zero(t, check.mismatches.Load())
}
