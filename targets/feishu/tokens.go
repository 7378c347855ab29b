package feishu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/replicator-cdc/replicator/state"
)

// tokenSource hands out the access token for the next request.
type tokenSource interface {
	token(ctx context.Context) (string, error)
	// expired is told that the API refused tok as expired or invalid
	// (failure says how). It returns nil when a retry will get another
	// token, or the error that ends the writer.
	expired(tok string, failure error) error
}

// fixedToken is a user_access_token from the configuration, never refreshed.
type fixedToken struct {
	name, tok string
}

func (f fixedToken) token(context.Context) (string, error) { return f.tok, nil }

func (f fixedToken) expired(_ string, failure error) error {
	return fmt.Errorf("feishu target %q: the user_access_token was refused (%v): it has expired or is invalid; provide a new user_access_token, or configure oauth {app_id, app_secret, refresh_token} so that it is refreshed", f.name, failure)
}

// tokenFile is what the state directory keeps for an OAuth target.
type tokenFile struct {
	AppID                 string    `json:"app_id"`
	AccessToken           string    `json:"access_token"`
	AccessTokenExpiresAt  time.Time `json:"access_token_expires_at"`
	RefreshToken          string    `json:"refresh_token"`
	RefreshTokenExpiresAt time.Time `json:"refresh_token_expires_at,omitzero"`
}

func tokenPath(cfg *Config) string {
	return filepath.Join(cfg.StateDir, "feishu-"+cfg.Name+".token.json")
}

func saveTokens(path string, t tokenFile) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	return state.WriteFileAtomic(path, append(b, '\n'), 0o600)
}

// loadTokens reads the token file; found is false when there is none.
func loadTokens(path, appID string) (t tokenFile, found bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return t, false, nil
	}
	if err != nil {
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
// so refreshes run one at a time and the new pair is saved durably before
// the new access token is used.
//
// The crash window: if the answer to a refresh is lost (connection cut, or
// the process dies before the save completes), the server has already
// rotated, the saved refresh token is spent, and the new one is unknown.
// The next refresh then fails with 20073 (already used) and the writer stops
// with a message asking a person to authorize again; nothing else can
// recover it.
type oauthTokens struct {
	cfg  *Config
	tok  *tokenClient
	path string
	turn chan struct{} // one refresh at a time; a channel so waiting can be cancelled

	mu    sync.Mutex
	cur   tokenFile
	stale string // an access token the API refused
}

func newOAuthTokens(cfg *Config, tc *tokenClient) (*oauthTokens, error) {
	o := &oauthTokens{cfg: cfg, tok: tc, path: tokenPath(cfg), turn: make(chan struct{}, 1)}
	saved, found, err := loadTokens(o.path, cfg.OAuth.AppID)
	switch {
	case err != nil:
		return nil, fmt.Errorf("feishu target %q: %w with `replicator feishu-login --config FILE --target %s`", cfg.Name, err, cfg.Name)
	case found:
		o.cur = saved
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
	if c.AccessToken == "" || c.AccessToken == o.stale || !time.Now().Before(c.AccessTokenExpiresAt.Add(-o.cfg.TokenRefreshMargin)) {
		return "", false
	}
	return c.AccessToken, true
}

func (o *oauthTokens) token(ctx context.Context) (string, error) {
	if tok, ok := o.usable(); ok {
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
	o.mu.Lock()
	refresh := o.cur.RefreshToken
	o.mu.Unlock()
	next, err := o.tok.exchange(ctx, map[string]string{"grant_type": "refresh_token", "refresh_token": refresh})
	if err != nil {
		return "", err
	}
	if err := saveTokens(o.path, next); err != nil {
		return "", fmt.Errorf("feishu target %q: the token was refreshed but could not be saved (%v); the previous refresh token is spent: fix the state directory and authorize again with `replicator feishu-login --config FILE --target %s`", o.cfg.Name, err, o.cfg.Name)
	}
	o.mu.Lock()
	o.cur, o.stale = next, ""
	o.mu.Unlock()
	return next.AccessToken, nil
}

func (o *oauthTokens) expired(tok string, _ error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cur.AccessToken == tok {
		o.stale = tok
	}
	return nil
}

// SavedTokenExpiry reads when the saved tokens of a target expire, for the
// status command; found is false when no token file exists.
func SavedTokenExpiry(stateDir, name string) (access, refresh time.Time, found bool, err error) {
	data, err := os.ReadFile(tokenPath(&Config{StateDir: stateDir, Name: name}))
	if errors.Is(err, os.ErrNotExist) {
		return time.Time{}, time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, time.Time{}, false, fmt.Errorf("feishu: read token file: %w", err)
	}
	var tf tokenFile
	if err := json.Unmarshal(data, &tf); err != nil {
		return time.Time{}, time.Time{}, false, fmt.Errorf("feishu: token file of %s is corrupt: %w", name, err)
	}
	return tf.AccessTokenExpiresAt, tf.RefreshTokenExpiresAt, true, nil
}
