package feishu

import (
	"errors"
	"fmt"
	"time"
)

// ErrNoBorrowableToken says no saved access token stays valid long enough
// to be borrowed.
var ErrNoBorrowableToken = errors.New("no saved Feishu access token valid long enough")

// BorrowSavedToken returns cfg set to use the access token the daemon saved
// in cfg.StateDir, as a fixed token, when that token stays valid for at
// least minValid. A second process beside the daemon (verify) must never
// refresh: refresh tokens are single-use, and its refresh would spend the
// daemon's. A cfg with a configured user_access_token is returned as it is.
func BorrowSavedToken(cfg Config, minValid time.Duration, now time.Time) (Config, error) {
	if cfg.UserAccessToken != "" {
		return cfg, nil
	}
	t, found, err := loadTokens(&cfg, cfg.OAuth.AppID)
	if err != nil {
		return cfg, fmt.Errorf("feishu target %q: %w", cfg.Name, err)
	}
	if !found || t.AccessToken == "" || t.AccessTokenExpiresAt.Before(now.Add(minValid)) {
		return cfg, fmt.Errorf("feishu target %q: %w (at least %s)", cfg.Name, ErrNoBorrowableToken, minValid)
	}
	cfg.UserAccessToken = t.AccessToken
	cfg.OAuth = OAuth{}
	return cfg, nil
}
