package feishu

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/replicator-cdc/replicator/state"
	"github.com/replicator-cdc/replicator/targets/apicall"
	"github.com/replicator-cdc/replicator/targets/backoff"
)

// fixedToken is a user_access_token from the configuration, never refreshed.
type fixedToken struct {
	name, tok string
}

func (f fixedToken) Token(context.Context) (string, error) { return f.tok, nil }

func (f fixedToken) Refused(_ string, failure error, _ int) error {
	return fmt.Errorf("feishu target %q: the user_access_token was refused (%v): it has expired or is invalid; provide a new user_access_token, or configure oauth {app_id, app_secret, refresh_token} so that it is refreshed", f.name, failure)
}

// tokenFile is what the state directory keeps for an OAuth target.
type tokenFile struct {
	AppID                 string    `json:"app_id"`
	AccessToken           string    `json:"access_token"`
	AccessTokenExpiresAt  time.Time `json:"access_token_expires_at"`
	AccessTokenIssuedAt   time.Time `json:"access_token_issued_at,omitzero"`
	RefreshToken          string    `json:"refresh_token"`
	RefreshTokenExpiresAt time.Time `json:"refresh_token_expires_at,omitzero"`
	// RefreshStartedAt is written ahead of a refresh with the refresh token
	// it spends; the pair the refresh brings has none. Found at start, it
	// says a refresh of this token went out and its answer was never saved.
	RefreshStartedAt time.Time `json:"refresh_started_at,omitzero"`
}

// TokenName is the document that keeps a target's tokens.
func TokenName(target string) string { return "feishu-" + target + ".token.json" }

// tokenDocs is where a target's tokens are kept.
func tokenDocs(cfg *Config) state.Docs {
	if cfg.Tokens != nil {
		return cfg.Tokens
	}
	return state.Dir(cfg.StateDir)
}

// saveTokenDoc saves a target's tokens where cfg keeps them.
func saveTokenDoc(cfg *Config, t tokenFile) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	return tokenDocs(cfg).Save(TokenName(cfg.Name), append(b, '\n'))
}

func saveTokens(path string, t tokenFile) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	return state.WriteFileAtomic(path, append(b, '\n'), 0o600)
}

// loadTokens reads the saved tokens; found is false when there are none.
func loadTokens(cfg *Config, appID string) (t tokenFile, found bool, err error) {
	path := tokenDocs(cfg).Where(TokenName(cfg.Name))
	b, found, err := tokenDocs(cfg).Load(TokenName(cfg.Name))
	if err != nil || !found {
		return t, false, err
	}
	if err := json.Unmarshal(b, &t); err != nil || t.RefreshToken == "" {
		return t, false, fmt.Errorf("token file %s is damaged (%v): delete it and authorize again", path, err)
	}
	if t.AppID != appID {
		return t, false, fmt.Errorf("token file %s belongs to app %s, not %s: authorize again", path, t.AppID, appID)
	}
	return t, true, nil
}

// oauthTokens refreshes the access token before it expires and when the API
// refuses it. Refresh tokens are single-use: each refresh spends the old one,
// so refreshes run one at a time, and the token file is written (the
// current pair again) just before a refresh, so that a state directory
// that cannot be written (a full disk) stops the refresh before it spends
// the refresh token. The new pair is saved right after the refresh; if that
// save fails all the same, the pair is kept and used, and the save is tried
// again with backoff on later calls until it succeeds: dropping the pair
// would strand the daemon, since the saved refresh token is spent.
//
// The crash window: if the answer to a refresh is lost (connection cut, or
// the process dies before the save completes), the server has already
// rotated, the saved refresh token is spent, and the new one is unknown.
// The next refresh then fails with 20073 (already used) and the writer stops
// with a message asking a person to authorize again; nothing else can
// recover it. The window is one round trip to the token endpoint plus one
// save: the save is the next thing after the answer, before the new access
// token is handed to any request, and the write ahead of the refresh marks
// the saved pair (RefreshStartedAt), so that whoever loads it later (a
// restart, a standby taking over) can say that this is what happened. The
// end of the lease that fences the token store does not open it: a refresh
// is sent only when the lease covers its deadline and the save (Lease).
type oauthTokens struct {
	cfg  *Config
	tok  *tokenClient
	path string
	// save writes the token file; a seam for tests of a full disk.
	save func(path string, t tokenFile) error
	// turn serializes refreshes and saves, so that an older pair is never
	// written over a newer one; a channel so waiting can be cancelled.
	turn chan struct{}

	// interrupted is when a refresh of the loaded pair went out whose
	// answer was never saved (zero when none).
	interrupted time.Time

	mu        sync.Mutex
	cur       tokenFile
	stale     string    // an access token the API refused
	unsaved   bool      // cur is not in the token file yet
	saveFails int       // failed saves in a row
	saveAt    time.Time // when a failed save may be tried again
}

func newOAuthTokens(cfg *Config, tc *tokenClient) (*oauthTokens, error) {
	o := &oauthTokens{cfg: cfg, tok: tc, path: tokenDocs(cfg).Where(TokenName(cfg.Name)), save: saveTokens, turn: make(chan struct{}, 1)}
	if cfg.Tokens != nil {
		o.save = func(_ string, t tokenFile) error { return saveTokenDoc(cfg, t) }
	}
	saved, found, err := loadTokens(cfg, cfg.OAuth.AppID)
	switch {
	case err != nil:
		return nil, fmt.Errorf("feishu target %q: %w with `replicator feishu-login --config FILE --target %s`", cfg.Name, err, cfg.Name)
	case found:
		o.cur = saved
		if !saved.RefreshStartedAt.IsZero() {
			o.interrupted = saved.RefreshStartedAt
			tc.log.Warn("feishu: a refresh of the saved OAuth token was started and its answer never saved (the daemon that held it stopped or was cut off during the refresh); if Feishu had answered it, the saved refresh token is spent and the next refresh is refused: then authorize again",
				"file", o.path, "refresh_started_at", saved.RefreshStartedAt)
		}
	case cfg.OAuth.RefreshToken != "":
		o.cur = tokenFile{AppID: cfg.OAuth.AppID, RefreshToken: cfg.OAuth.RefreshToken}
	default:
		return nil, fmt.Errorf("feishu target %q: no refresh token: authorize with `replicator feishu-login --config FILE --target %s`, or set oauth refresh_token", cfg.Name, cfg.Name)
	}
	return o, nil
}

// usable returns the current access token unless it is missing, refused or
// due for refresh.
func (o *oauthTokens) usable() (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.cur
	if c.AccessToken == "" || c.AccessToken == o.stale || !time.Now().Before(c.AccessTokenExpiresAt.Add(-refreshMargin(c, o.cfg.TokenRefreshMargin))) {
		return "", false
	}
	return c.AccessToken, true
}

// refreshMargin is how long before expiry a token is refreshed: the
// configured margin, but at most half the token's lifetime, so that a
// short-lived token is refreshed once per lifetime rather than before every
// request.
func refreshMargin(t tokenFile, configured time.Duration) time.Duration {
	if t.AccessTokenIssuedAt.IsZero() {
		return configured
	}
	return min(configured, t.AccessTokenExpiresAt.Sub(t.AccessTokenIssuedAt)/2)
}

// unexpired returns the current access token while it is still good,
// ignoring the refresh margin, and whether a failed save may be tried
// again already.
func (o *oauthTokens) unexpired() (tok string, ok, saveDue bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.cur
	now := time.Now()
	ok = c.AccessToken != "" && c.AccessToken != o.stale && now.Before(c.AccessTokenExpiresAt)
	return c.AccessToken, ok, !now.Before(o.saveAt)
}

// Token returns the access token, refreshing it when due.
func (o *oauthTokens) Token(ctx context.Context) (string, error) {
	if tok, ok := o.usable(); ok {
		o.retrySave()
		return tok, nil
	}
	select {
	case o.turn <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-o.turn }()
	// Another caller may have refreshed while this one waited.
	if tok, ok := o.usable(); ok {
		return tok, nil
	}
	// Before spending the refresh token, make sure its successor can be
	// kept: write the current pair (which also saves a pair a failed save
	// left in memory). Until the state directory can be written, the
	// current access token is used for as long as it lasts; then requests
	// wait.
	if tok, ok, due := o.unexpired(); ok && !due {
		return tok, nil
	}
	// Mark the refresh only once the lease can cover it (see Lease).
	if _, err := o.refreshDeadline(ctx); err != nil {
		return "", err
	}
	o.mu.Lock()
	o.cur.RefreshStartedAt = time.Now().UTC()
	o.mu.Unlock()
	for attempt := 1; ; attempt++ {
		err := o.saveCurrent()
		if err == nil {
			break
		}
		if tok, ok, _ := o.unexpired(); ok {
			return tok, nil
		}
		if o.cfg.MaxRetries > 0 && attempt > o.cfg.MaxRetries {
			return "", fmt.Errorf("feishu target %q: the access token expired and is not refreshed while the token file cannot be written (%v): free space in the state directory or fix its permissions; the refresh token is not spent", o.cfg.Name, err)
		}
		if err := backoff.Sleep(ctx, backoff.Delay(o.cfg.RetryMin, o.cfg.RetryMax, attempt)); err != nil {
			return "", err
		}
	}
	o.mu.Lock()
	refresh := o.cur.RefreshToken
	o.mu.Unlock()
	next, err := o.refresh(ctx, refresh)
	if err != nil {
		if !o.interrupted.IsZero() && ctx.Err() == nil {
			return "", fmt.Errorf("%w (a refresh of this token started at %s was never saved: the daemon that held it stopped or was cut off during that refresh)", err, o.interrupted.Format(time.RFC3339))
		}
		return "", err
	}
	o.interrupted = time.Time{}
	o.mu.Lock()
	o.cur, o.stale, o.unsaved, o.saveFails, o.saveAt = next, "", true, 0, time.Time{}
	o.mu.Unlock()
	// A failure is logged and retried; the new pair is used meanwhile.
	_ = o.saveCurrent()
	return next.AccessToken, nil
}

// retrySave tries again to save a pair a failed save left in memory, when
// the backoff allows and no refresh or save is under way.
func (o *oauthTokens) retrySave() {
	o.mu.Lock()
	due := o.unsaved && !time.Now().Before(o.saveAt)
	o.mu.Unlock()
	if !due {
		return
	}
	select {
	case o.turn <- struct{}{}:
		defer func() { <-o.turn }()
		_ = o.saveCurrent()
	default:
	}
}

// saveCurrent writes the current pair to the token file. The caller holds
// the turn. A failure is counted, logged loudly and scheduled for a retry.
func (o *oauthTokens) saveCurrent() error {
	o.mu.Lock()
	cur, unsaved := o.cur, o.unsaved
	o.mu.Unlock()
	err := o.save(o.path, cur)
	o.mu.Lock()
	defer o.mu.Unlock()
	if err == nil {
		if unsaved && o.saveFails > 0 {
			o.tok.log.Warn("feishu: the refreshed OAuth token is saved now; restarting is safe again", "file", o.path)
		}
		o.unsaved, o.saveFails, o.saveAt = false, 0, time.Time{}
		return nil
	}
	o.saveFails++
	o.saveAt = time.Now().Add(backoff.Delay(o.cfg.RetryMin, o.cfg.RetryMax, o.saveFails))
	o.tok.m.Errors.WithLabelValues(o.cfg.Name, apicall.ReasonTokenUnsaved).Inc()
	if unsaved {
		o.tok.log.Error("feishu: the refreshed OAuth token could not be saved; it is kept in memory and saving is retried. The previous refresh token is spent: free space in the state directory (or fix its permissions) and do NOT stop or restart the daemon until the log says the token is saved, or a person must authorize again",
			"file", o.path, "attempt", o.saveFails, "error", err.Error())
	} else {
		o.tok.log.Error("feishu: the token file cannot be written, so the OAuth token is not refreshed (that would spend the refresh token): free space in the state directory or fix its permissions",
			"file", o.path, "attempt", o.saveFails, "error", err.Error())
	}
	return err
}

// Refused marks tok stale, so that the next Token refreshes it. A token
// refused right after a refresh will be refused again: the third refusal in
// one call ends it.
func (o *oauthTokens) Refused(tok string, failure error, n int) error {
	if n > 2 {
		return fmt.Errorf("feishu target %q: the API keeps refusing freshly refreshed tokens (%v): authorize again with `replicator feishu-login --config FILE --target %s`", o.cfg.Name, failure, o.cfg.Name)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cur.AccessToken == tok {
		o.stale = tok
	}
	return nil
}

// SavedTokenExpiry reads when the saved tokens of a target expire, for the
// status command; found is false when none are saved.
func SavedTokenExpiry(docs state.Docs, name string) (access, refresh time.Time, found bool, err error) {
	data, found, err := docs.Load(TokenName(name))
	if err != nil || !found {
		return time.Time{}, time.Time{}, false, err
	}
	var tf tokenFile
	if err := json.Unmarshal(data, &tf); err != nil {
		return time.Time{}, time.Time{}, false, fmt.Errorf("feishu: token file of %s is corrupt: %w", name, err)
	}
	return tf.AccessTokenExpiresAt, tf.RefreshTokenExpiresAt, true, nil
}
