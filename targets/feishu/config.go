// Package feishu writes batches to Feishu aPaaS workspace tables: upserts
// as PostgREST bulk inserts with merge-duplicates, deletes as filtered
// deletes, under the API's rate limit, with retries, bad-row isolation and
// user_access_token refresh.
package feishu

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/replicator-cdc/replicator/metrics"
	"github.com/replicator-cdc/replicator/state"
)

// Config is one Feishu target. Zero fields take the defaults noted.
type Config struct {
	// Name is the target's name, for logs, metrics and the token file.
	Name string
	// BaseURL is the open platform; default "https://open.feishu.cn".
	BaseURL string
	// AuthorizeURL is the accounts site Login sends the person to; default
	// "https://accounts.feishu.cn".
	AuthorizeURL string
	// WorkspaceID is the aPaaS workspace holding the tables.
	WorkspaceID string
	// UserAccessToken is a fixed token; it expires after about 2 hours.
	// Set it or OAuth, not both.
	UserAccessToken string
	// OAuth keeps a user_access_token alive by refreshing it.
	OAuth OAuth
	// Scopes are what Login asks the person to grant; default the record
	// write scope and offline_access (needed for a refresh token).
	Scopes []string
	// RequestsPerSecond is the API rate limit shared by all tables; default 10.
	RequestsPerSecond float64
	// RequestTimeout bounds each HTTP request; default 30s.
	RequestTimeout time.Duration
	// MaxFilterLength bounds a delete filter's length as sent in the URL
	// (percent-encoded); default 4000.
	MaxFilterLength int
	// MaxBatchRows caps rows per request, at most 500 (the API limit); default 500.
	MaxBatchRows int
	// MaxInFlight is how many requests a Write keeps in flight; default 4.
	MaxInFlight int
	// RetryMin and RetryMax bound the exponential backoff; defaults 200ms and 30s.
	RetryMin time.Duration
	RetryMax time.Duration
	// MaxRetries gives up on a request after that many retries; 0 retries
	// transient failures until the context ends.
	MaxRetries int
	// TokenRefreshMargin is how long before expiry an OAuth access token is
	// refreshed; default 5m.
	TokenRefreshMargin time.Duration
	// StateDir holds the token file feishu-<Name>.token.json (OAuth only).
	StateDir string
	// Tokens, when set, keeps that document instead of StateDir (a store
	// shared with a standby instance).
	Tokens state.Docs
}

// OAuth holds the app credentials and the first refresh token (from Login
// or the console). Once a refreshed token is saved in the state directory,
// the saved one is used instead of RefreshToken.
type OAuth struct {
	AppID        string
	AppSecret    string
	RefreshToken string
}

// Deps are the writer's collaborators; all optional.
type Deps struct {
	Logger     *slog.Logger
	Metrics    *metrics.Target
	HTTPClient *http.Client
	// TableHealth is told when a table starts failing as a whole (its
	// writes wait) and, with a nil error, when it recovers.
	TableHealth func(table string, err error)
}

// WriteScope is the scope record writes need.
const WriteScope = "app_engine:workspace.table.record:write"

// apiMaxRows is the documented limit of rows per insert request.
const apiMaxRows = 500

var namePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func (c *Config) setDefaults() {
	if c.BaseURL == "" {
		c.BaseURL = "https://open.feishu.cn"
	}
	if c.AuthorizeURL == "" {
		c.AuthorizeURL = "https://accounts.feishu.cn"
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{WriteScope, "offline_access"}
	}
	if c.RequestsPerSecond == 0 {
		c.RequestsPerSecond = 10
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.MaxFilterLength == 0 {
		c.MaxFilterLength = 4000
	}
	if c.MaxBatchRows == 0 {
		c.MaxBatchRows = apiMaxRows
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 4
	}
	if c.RetryMin == 0 {
		c.RetryMin = 200 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 30 * time.Second
	}
	if c.TokenRefreshMargin == 0 {
		c.TokenRefreshMargin = 5 * time.Minute
	}
}

// validate names the offending setting as the configuration file spells it.
func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !namePattern.MatchString(c.Name) {
		bad("target name %q: use letters, digits, '_', '-' or '.'", c.Name)
	}
	if c.WorkspaceID == "" {
		bad("workspace_id is required")
	}
	oauth := c.OAuth.AppID != "" || c.OAuth.AppSecret != "" || c.OAuth.RefreshToken != ""
	switch {
	case c.UserAccessToken != "" && oauth:
		bad("set either user_access_token or oauth, not both")
	case c.UserAccessToken == "" && !oauth:
		bad("set user_access_token or oauth {app_id, app_secret, refresh_token}")
	case oauth:
		errs = append(errs, c.validateOAuth())
	}
	if c.RequestsPerSecond < 0 {
		bad("requests_per_second must be positive")
	}
	if c.MaxBatchRows < 0 || c.MaxBatchRows > apiMaxRows {
		bad("max_batch_rows must be between 1 and %d", apiMaxRows)
	}
	if c.MaxFilterLength < 100 {
		bad("max_filter_length must be at least 100")
	}
	if c.MaxInFlight < 1 || c.RequestTimeout < 0 || c.RetryMin <= 0 || c.RetryMax < c.RetryMin || c.MaxRetries < 0 {
		bad("max_in_flight, request_timeout, retry_min, retry_max and max_retries must be positive, with retry_max >= retry_min")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("feishu target %q: %w", c.Name, err)
	}
	return nil
}

func (c *Config) validateOAuth() error {
	var errs []error
	if c.OAuth.AppID == "" || c.OAuth.AppSecret == "" {
		errs = append(errs, errors.New("oauth needs app_id and app_secret"))
	}
	if c.StateDir == "" {
		errs = append(errs, errors.New("oauth needs the state directory, where the rotated refresh token is kept"))
	}
	return errors.Join(errs...)
}
