package gptbots

import (
	"fmt"
	"time"

	// Embedded zone data, because a minimal container without
	// /usr/share/zoneinfo would otherwise fail to load Config.Timezone.
	_ "time/tzdata"

	"github.com/replicator-cdc/replicator/internal/setting"
	"github.com/replicator-cdc/replicator/targets/apicall"
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
	DefaultProbeMax       = apicall.DefaultProbeMax
	// DefaultMaxConcurrentRequests fills the quota when the API answers in
	// about a second.
	DefaultMaxConcurrentRequests = 16
)

// Config is one GPTBots target (one API key). Zero fields take the defaults.
// The yaml tags name the settings of a gptbots target in the configuration
// file, which the config package decodes into a Config; untagged fields are
// set by the program.
type Config struct {
	// Name is the target's name in the configuration, for logs and metrics.
	Name string
	// BaseURL is the API host for the key's region, without a path.
	BaseURL string `yaml:"base_url"`
	// APIKey is the agent's API key.
	APIKey string `yaml:"api_key"`
	// RequestsPerSecond caps the calls this writer makes, all tables
	// together, counted as the server counts them: by arrival, in any
	// sliding second.
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	// RequestTimeout bounds each call.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// Timezone is the IANA zone DATETIME fields are written in.
	Timezone string `yaml:"timezone"`
	// MaxConcurrentRequests is how many requests may be in flight at once,
	// all tables together, 1 to 64.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// MaxItems caps the items of one update call.
	MaxItems int
	// MaxBodyBytes caps the body of one update or delete call.
	MaxBodyBytes int
	// MaxDeleteItems caps the items of one delete call.
	MaxDeleteItems int
	// BackoffMin and BackoffMax bound the wait before a retry.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// ProbeMax caps the backoff between the probes of a down API.
	ProbeMax time.Duration
	// MaxRetries is how many times a failed call is retried before Write
	// gives up with an error; 0 retries until the context ends.
	MaxRetries int
}

// Deps are the writer's collaborators, the same for every target writer.
type Deps = apicall.Deps

// DefaultConfig returns the configuration of a target named name with every
// default applied; settings decoded over it replace the defaults.
func DefaultConfig(name string) Config {
	c := Config{Name: name}
	c.defaults()
	return c
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
	if c.MaxConcurrentRequests == 0 {
		c.MaxConcurrentRequests = DefaultMaxConcurrentRequests
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
	if c.ProbeMax == 0 {
		c.ProbeMax = DefaultProbeMax
	}
}

// Problems lists what is wrong with the settings of the configuration file,
// each named by its key; the defaults must have been applied. No message
// quotes the API key.
func (c *Config) Problems() setting.Problems {
	var ps setting.Problems
	if c.APIKey == "" {
		ps.Add("api_key", "is required for a gptbots target: set it, for example to ${GPTBOTS_API_KEY}")
	}
	ps.URL("base_url", c.BaseURL)
	ps.Rate("requests_per_second", c.RequestsPerSecond)
	ps.Duration("request_timeout", c.RequestTimeout)
	if c.Timezone == "" {
		ps.Add("timezone", "is empty: use an IANA time zone such as UTC or Asia/Singapore")
	} else if _, err := time.LoadLocation(c.Timezone); err != nil {
		ps.AddValue("timezone", c.Timezone, "is not a known time zone: use an IANA name such as UTC or Asia/Singapore")
	}
	ps.Range("max_concurrent_requests", c.MaxConcurrentRequests, 1, 64, DefaultMaxConcurrentRequests)
	return ps
}

// validate checks the defaulted config, the settings the program sets too.
func (c *Config) validate() (*time.Location, error) {
	ps := c.Problems()
	positive := []struct {
		name string
		ok   bool
	}{
		{"max_items", c.MaxItems > 0},
		{"max_body_bytes", c.MaxBodyBytes > 0},
		{"max_delete_items", c.MaxDeleteItems > 0},
		{"backoff_min", c.BackoffMin > 0},
		{"backoff_max", c.BackoffMax >= c.BackoffMin},
		{"max_retries", c.MaxRetries >= 0},
	}
	for _, p := range positive {
		if !p.ok {
			ps.Add(p.name, "is out of range")
		}
	}
	if err := ps.Err(fmt.Sprintf("gptbots target %q", c.Name)); err != nil {
		return nil, err
	}
	return time.LoadLocation(c.Timezone)
}
