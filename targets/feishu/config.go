// Package feishu writes batches to Feishu aPaaS workspace tables: upserts
// as PostgREST bulk inserts with merge-duplicates, deletes as filtered
// deletes, under the API's rate limit, with retries, bad-row isolation and
// user_access_token refresh.
package feishu

import (
	"fmt"
	"regexp"
	"time"

	"github.com/replicator-cdc/replicator/internal/setting"
	"github.com/replicator-cdc/replicator/state"
	"github.com/replicator-cdc/replicator/targets/apicall"
)

// Config is one Feishu target. Zero fields take the defaults noted. The
// yaml tags name the settings of a feishu target in the configuration file,
// which the config package decodes into a Config; untagged fields are set by
// the program.
type Config struct {
	// Name is the target's name, for logs, metrics and the token file.
	Name string
	// BaseURL is the open platform; default "https://open.feishu.cn".
	BaseURL string `yaml:"base_url"`
	// AuthorizeURL is the accounts site Login sends the person to; default
	// "https://accounts.feishu.cn".
	AuthorizeURL string `yaml:"authorize_url"`
	// WorkspaceID is the aPaaS workspace holding the tables.
	WorkspaceID string `yaml:"workspace_id"`
	// UserAccessToken is a fixed token; it expires after about 2 hours.
	// Set it or OAuth, not both.
	UserAccessToken string `yaml:"user_access_token"`
	// OAuth keeps a user_access_token alive by refreshing it.
	OAuth OAuth `yaml:"oauth"`
	// Scopes are what Login asks the person to grant; default the record
	// write scope and offline_access (needed for a refresh token).
	Scopes []string
	// RequestsPerSecond is the API rate limit shared by all tables; default 10.
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	// RequestTimeout bounds each HTTP request; default 30s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxFilterLength bounds a delete filter's length as sent in the URL
	// (percent-encoded); default 4000.
	MaxFilterLength int `yaml:"max_filter_length"`
	// MaxConcurrentRequests is how many requests may be in flight at once,
	// all tables together, 1 to 64; default 16.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// MaxBatchRows caps rows per request, at most 500 (the API limit); default 500.
	MaxBatchRows int
	// RetryMin and RetryMax bound the exponential backoff; defaults 200ms and 30s.
	RetryMin time.Duration
	RetryMax time.Duration
	// ProbeMax caps the backoff between the probes of a down API; default
	// apicall.DefaultProbeMax.
	ProbeMax time.Duration
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
	// Lease, when set, is the lease that fences the token store: a refresh
	// is sent only while it covers the refresh and the save of its answer.
	// Nil when the process holds none (a command reading the targets).
	Lease Lease
}

// OAuth holds the app credentials and the first refresh token (from Login
// or the console). Once a refreshed token is saved in the state directory,
// the saved one is used instead of RefreshToken.
type OAuth struct {
	AppID        string `yaml:"app_id"`
	AppSecret    string `yaml:"app_secret"`
	RefreshToken string `yaml:"refresh_token"`
}

// DefaultConfig returns the configuration of a target named name with every
// default applied; settings decoded over it replace the defaults.
func DefaultConfig(name string) Config {
	c := Config{Name: name}
	c.setDefaults()
	return c
}

// UsesOAuth reports whether the target refreshes its token with OAuth
// rather than using a fixed user_access_token.
func (c *Config) UsesOAuth() bool {
	return c.OAuth != OAuth{}
}

// Deps are the writer's collaborators, the same for every target writer.
type Deps = apicall.Deps

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
	if c.MaxConcurrentRequests == 0 {
		c.MaxConcurrentRequests = 16
	}
	if c.RetryMin == 0 {
		c.RetryMin = 200 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 30 * time.Second
	}
	if c.ProbeMax == 0 {
		c.ProbeMax = apicall.DefaultProbeMax
	}
	if c.TokenRefreshMargin == 0 {
		c.TokenRefreshMargin = 5 * time.Minute
	}
}

// Problems lists what is wrong with the settings of the configuration file,
// each named by its key; the defaults must have been applied.
func (c *Config) Problems() setting.Problems {
	var ps setting.Problems
	if c.WorkspaceID == "" {
		ps.Add("workspace_id", "is required for a feishu target: the aPaaS workspace, such as workspace_aadimx5uzpsls")
	}
	credentials := []string{"user_access_token", "oauth"}
	switch {
	case c.UserAccessToken != "" && c.UsesOAuth():
		ps.AddFrom("", credentials, "sets both user_access_token and oauth: keep one (oauth keeps the token fresh)")
	case c.UserAccessToken == "" && !c.UsesOAuth():
		ps.AddFrom("", credentials, "needs credentials: set oauth {app_id, app_secret, refresh_token}, or user_access_token")
	case c.UsesOAuth():
		if c.OAuth.AppID == "" {
			ps.Add("oauth.app_id", "is required: the Feishu app's ID")
		}
		if c.OAuth.AppSecret == "" {
			ps.Add("oauth.app_secret", "is required: the Feishu app's secret")
		}
	}
	ps.URL("base_url", c.BaseURL)
	ps.URL("authorize_url", c.AuthorizeURL)
	ps.Rate("requests_per_second", c.RequestsPerSecond)
	ps.Duration("request_timeout", c.RequestTimeout)
	if c.MaxFilterLength < minFilterLength {
		ps.Add("max_filter_length", "is %d: use at least %d characters, such as 4000", c.MaxFilterLength, minFilterLength)
	}
	ps.Range("max_concurrent_requests", c.MaxConcurrentRequests, 1, 64, 16)
	return ps
}

// minFilterLength leaves room for a filter on one key besides the URL.
const minFilterLength = 100

// validate checks the defaulted config, the settings the program sets too.
func (c *Config) validate() error {
	ps := c.Problems()
	if !namePattern.MatchString(c.Name) {
		ps.AddValue("", c.Name, "is not a usable target name: use letters, digits, '_', '-' or '.'")
	}
	if c.MaxBatchRows < 0 || c.MaxBatchRows > apiMaxRows {
		ps.Add("max_batch_rows", "must be between 1 and %d", apiMaxRows)
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin || c.MaxRetries < 0 {
		ps.Add("", "retry_min, retry_max and max_retries must be positive, with retry_max >= retry_min")
	}
	if c.UsesOAuth() && c.StateDir == "" {
		ps.Add("oauth", "needs the state directory, where the rotated refresh token is kept")
	}
	return ps.Err(fmt.Sprintf("feishu target %q", c.Name))
}
