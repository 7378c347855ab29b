package feishu

import (
	"context"
	"io/fs"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// fullDisk stands in for the token file's file system: while full, a save
// fails with ENOSPC, except for the next allow saves.
type fullDisk struct {
	mu    sync.Mutex
	full  bool
	allow int
	fails int
}

func (d *fullDisk) set(full bool, allow int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.full, d.allow = full, allow
}

func (d *fullDisk) failures() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fails
}

func (d *fullDisk) save(path string, t tokenFile) error {
	d.mu.Lock()
	fail := d.full && d.allow == 0
	if d.full && d.allow > 0 {
		d.allow--
	}
	if fail {
		d.fails++
	}
	d.mu.Unlock()
	if fail {
		return &fs.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}
	}
	return saveTokens(path, t)
}

func (e *env) oauthWriter(d *fullDisk) *Writer {
	e.t.Helper()
	w := e.writer()
	o, ok := w.tokens.(*oauthTokens)
	require.True(e.t, ok)
	o.save = d.save
	return w
}

// TestRefreshedTokenSurvivesFullDisk: the disk fills between the check
// before a refresh and the save of the new pair. The new pair is kept and
// used, saved once the disk has room, and a restart refreshes with it.
func TestRefreshedTokenSurvivesFullDisk(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	e.useOAuth()
	disk := &fullDisk{}
	w := e.oauthWriter(disk)
	e.write(w, customers, upsertRec(idField(1)))
	before := e.tokenFile().RefreshToken

	// The check before the refresh still fits; the new pair does not.
	disk.set(true, 1)
	e.fake.ExpireTokens()
	e.write(w, customers, upsertRec(idField(2)))
	assert.Len(t, e.fake.Rows("customers"), 2, "the daemon works on with the new token")
	assert.False(t, e.fake.RefreshTokenLive(before), "the refresh spent the saved refresh token")
	assert.Equal(t, before, e.tokenFile().RefreshToken, "the new pair is not on disk yet")
	assert.Contains(t, e.logs.String(), "could not be saved")
	assert.Contains(t, e.logs.String(), "do NOT stop or restart")
	assert.GreaterOrEqual(t, counter(e.m.Errors, "lark", "token_unsaved"), 1.0)

	// Still full: requests go on with the kept token, nothing is refreshed.
	for i := range 3 {
		e.write(w, customers, upsertRec(idField(10+i)))
	}
	assert.Len(t, e.requests(http.MethodPost, "/token"), 2)

	// Room again: a later call saves the kept pair.
	disk.set(false, 0)
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < 1000 && time.Now().Before(deadline) && e.tokenFile().RefreshToken == before; i++ {
		time.Sleep(5 * time.Millisecond)
		e.write(w, customers, upsertRec(idField(2)))
	}
	saved := e.tokenFile()
	require.NotEqual(t, before, saved.RefreshToken, "the kept pair was saved once the disk had room")
	assert.True(t, e.fake.RefreshTokenLive(saved.RefreshToken))
	assert.Contains(t, e.logs.String(), "saved now")

	// A restart reads the saved pair and refreshes with it: no 20073.
	restarted := e.writer()
	e.fake.ExpireTokens()
	e.write(restarted, customers, upsertRec(idField(3)))
	assert.Len(t, e.requests(http.MethodPost, "/token"), 3)
	assert.False(t, e.fake.RefreshTokenLive(saved.RefreshToken))
	assert.True(t, e.fake.RefreshTokenLive(e.tokenFile().RefreshToken))
	assert.Len(t, e.fake.Rows("customers"), 6)
	for _, r := range e.requests(http.MethodPost, "/token") {
		assert.NotEqual(t, 20073, r.Code)
	}
}

// TestFullDiskDoesNotSpendRefreshToken: while the token file cannot be
// written, no refresh is made, so the refresh token stays good; the current
// access token is used while it lasts; once the disk has room the refresh
// goes ahead.
func TestFullDiskDoesNotSpendRefreshToken(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	e.useOAuth()
	e.cfg.MaxRetries = 3
	first := e.cfg.OAuth.RefreshToken
	disk := &fullDisk{}
	disk.set(true, 0)
	w := e.oauthWriter(disk)
	batch := replicator.Batch{Table: customers, Records: []replicator.Record{upsertRec(idField(1))}}

	_, err := w.Write(context.Background(), batch)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "free space in the state directory")
	assert.Contains(t, err.Error(), "not spent")
	assert.Empty(t, e.requests(http.MethodPost, "/token"), "no refresh while the token file cannot be written")
	assert.True(t, e.fake.RefreshTokenLive(first))
	assert.Contains(t, e.logs.String(), "is not refreshed")

	disk.set(false, 0)
	e.write(w, customers, upsertRec(idField(1)))
	saved := e.tokenFile()
	assert.True(t, e.fake.RefreshTokenLive(saved.RefreshToken))

	// Due for refresh but not expired, with a full disk: the current token
	// serves, the refresh waits.
	disk.set(true, 0)
	w.cfg.TokenRefreshMargin = 3 * time.Hour
	// The margin applies whole only to a token of unknown lifetime (a
	// token file written before the issue time was kept).
	o := w.tokens.(*oauthTokens)
	o.mu.Lock()
	o.cur.AccessTokenIssuedAt = time.Time{}
	o.mu.Unlock()
	fails := disk.failures()
	e.write(w, customers, upsertRec(idField(2)))
	e.write(w, customers, upsertRec(idField(3)))
	assert.Len(t, e.fake.Rows("customers"), 3)
	assert.Len(t, e.requests(http.MethodPost, "/token"), 1)
	assert.True(t, e.fake.RefreshTokenLive(saved.RefreshToken))
	assert.Greater(t, disk.failures(), fails, "the file was checked before each refresh it allowed")
}
