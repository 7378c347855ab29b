package gptbots

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	// Embedded zone data, because a minimal container without
	// /usr/share/zoneinfo would otherwise fail to load Config.Timezone.
	_ "time/tzdata"

	"github.com/replicator-cdc/replicator/metrics"
)

// Defaults for zero Config fields.
const (
	DefaultBaseURL           = "https://api-sg.gptbots.ai"
	DefaultRequestsPerSecond = 5
	DefaultRequestTimeout    = 30 * time.Second
	DefaultTimezone          = "UTC"
	DefaultMaxItems          = 100
	// DefaultMaxBodyBytes reads the documented "5 MB" as 5,000,000 bytes,
	// which is within the limit whichever megabyte the API means.
	DefaultMaxBodyBytes   = 5_000_000
	DefaultMaxDeleteItems = 1000
	DefaultBackoffMin     = 200 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
	// DefaultMaxConcurrentRequests keeps enough calls in flight to use
	// the rate at answers of one second; MaxConcurrentRequestsLimit caps it.
	DefaultMaxConcurrentRequests = 16
	MaxConcurrentRequestsLimit   = 64
)

// Config is one GPTBots target (one API key). Zero fields take the defaults.
type Config struct {
	// Name is the target's name in the configuration, for logs and metrics.
	Name string
	// BaseURL is the API host for the key's region, without a path.
	BaseURL string
	// APIKey is the agent's API key.
	APIKey string
	// RequestsPerSecond caps the calls this writer makes, all tables
	// together; it paces 5% below, to absorb network and timer jitter.
	RequestsPerSecond float64
	// RequestTimeout bounds each call.
	RequestTimeout time.Duration
	// Timezone is the IANA zone DATETIME fields are written in.
	Timezone string
	// MaxItems caps the items of one update call.
	MaxItems int
	// MaxBodyBytes caps the body of one update or delete call.
	MaxBodyBytes int
	// MaxDeleteItems caps the items of one delete call.
	MaxDeleteItems int
	// BackoffMin and BackoffMax bound the wait before a retry.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// MaxRetries is how many times a failed call is retried before Write
	// gives up with an error; 0 retries until the context ends.
	MaxRetries int
	// MaxConcurrentRequests bounds the calls in flight for all tables
	// together, and the batches the pipeline writes at once.
	MaxConcurrentRequests int
}

// Deps are the writer's collaborators.
type Deps struct {
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Metrics defaults to series on a private registry.
	Metrics *metrics.Target
	// HTTPClient defaults to a client with its own transport; per-call
	// timeouts come from Config.RequestTimeout either way.
	HTTPClient *http.Client
	// TableHealth is told when a table starts failing as a whole (its
	// writes wait) and, with a nil error, when it recovers.
	TableHealth func(table string, err error)
}

func (c *Config) defaults() {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.RequestsPerSecond == 0 {
		c.RequestsPerSecond = DefaultRequestsPerSecond
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Timezone == "" {
		c.Timezone = DefaultTimezone
	}
	if c.MaxItems == 0 {
		c.MaxItems = DefaultMaxItems
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxDeleteItems == 0 {
		c.MaxDeleteItems = DefaultMaxDeleteItems
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.MaxConcurrentRequests == 0 {
		c.MaxConcurrentRequests = DefaultMaxConcurrentRequests
	}
}

// validate checks the defaulted config; messages name the field and never
// the key.
func (c *Config) validate() (*time.Location, error) {
	var errs []error
	if c.APIKey == "" {
		errs = append(errs, errors.New("api_key is empty"))
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("base_url %q is not an http(s) URL", c.BaseURL))
	}
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		errs = append(errs, fmt.Errorf("timezone %q: %w", c.Timezone, err))
	}
	positive := []struct {
		name string
		ok   bool
	}{
		{"requests_per_second", c.RequestsPerSecond > 0},
		{"request_timeout", c.RequestTimeout > 0},
		{"max_items", c.MaxItems > 0},
		{"max_body_bytes", c.MaxBodyBytes > 0},
		{"max_delete_items", c.MaxDeleteItems > 0},
		{"backoff_min", c.BackoffMin > 0},
		{"backoff_max", c.BackoffMax >= c.BackoffMin},
		{"max_retries", c.MaxRetries >= 0},
		{"max_concurrent_requests", c.MaxConcurrentRequests >= 1 && c.MaxConcurrentRequests <= MaxConcurrentRequestsLimit},
	}
	for _, p := range positive {
		if !p.ok {
			errs = append(errs, fmt.Errorf("%s is out of range", p.name))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("gptbots target %q: %w", c.Name, errors.Join(errs...))
	}
	return loc, nil
}
