// Package apicall calls an HTTP API the way every target needs it called:
// one attempt loop that waits its turn at the credential's Limiter, sends,
// lets the API's classifier decide (done, retry, throttle, refresh the
// credential, reject, fatal), backs off with jitter, counts every attempt in
// the target metrics with one reason vocabulary and logs once per change of
// error. An API package keeps only its classifier table and its request and
// answer shapes.
package apicall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/replicator-cdc/replicator/metrics"
	"github.com/replicator-cdc/replicator/targets/backoff"
)

// Action is what the loop does after an answer.
type Action int

const (
	// Done: the API applied the request.
	Done Action = iota
	// Retry: nothing is known to be applied; send again after a backoff.
	Retry
	// Throttle: send again after the reset the answer names; no request of
	// the credential leaves before it.
	Throttle
	// Refresh: the credential was refused as expired or invalid; send
	// again with a fresh one.
	Refresh
	// Reject: the API refuses the request or its records; the caller reads
	// the scope (a record, the table) from the answer.
	Reject
	// Fatal: retrying cannot help; a person must act.
	Fatal
)

// Verdict is a classifier's decision about one answer.
type Verdict struct {
	Action Action
	// Reason is the errors metric's label, one of the Reason constants;
	// unused for Done.
	Reason string
	// Reset is how long a Throttle answer asks to wait; 0 when it names
	// nothing, which waits DefaultReset.
	Reset time.Duration
	// Failure says what went wrong, without secrets; nil for Done.
	Failure error
}

// DefaultReset is the pause after a throttling answer that names no reset.
const DefaultReset = time.Second

// DefaultProbeMax is the targets' ProbeMax: a down API's return is noticed
// within about that long (plus one answer's latency), a small part of the
// catch-up after an outage of minutes, while its probes cost the API one
// request per 2.5 to 5 s: make bench-outage measured 0.3 a second, against
// 0.9 to 1.6 when every request in flight retried on its own. Shorter
// would load an API that is down, and may be restarting, to win at most a
// few seconds; longer delays the catch-up by up to RetryMax.
const DefaultProbeMax = 5 * time.Second

// Answer is what came back from one attempt.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
	// Sent is when the attempt started: what the answer says holds from
	// then at the latest (a token's lifetime).
	Sent time.Time
}

// Classifier decides about an answer. Transport failures (no answer) are
// classified by the loop.
type Classifier func(*Answer) Verdict

// Credential hands out the bearer token of each attempt.
type Credential interface {
	Token(ctx context.Context) (string, error)
	// Refused is told that the API refused tok (the n-th time in one
	// call) for the reason failure: nil when a retry will carry another
	// token, otherwise the error that ends the call.
	Refused(tok string, failure error, n int) error
}

// Request is one API call, sent again as often as it takes.
type Request struct {
	// Op (upsert, delete, schema, token) and Table label the metrics and
	// the log.
	Op, Table string
	// Rows is how many rows the request carries, for the batch metric.
	Rows   int
	Method string
	URL    string
	Header http.Header
	Body   []byte
}

// Config is a Client's settings; Name, HTTP and Metrics are required.
type Config struct {
	// Name is the target's name: the metrics' target label.
	Name string
	// What starts error messages, e.g. `feishu target "lark"`.
	What string
	HTTP *http.Client
	// Limiter is the credential's, shared by all its clients; nil: the
	// client paces by RequestsPerSecond with one of its own, which Close
	// stops.
	Limiter           *Limiter
	RequestsPerSecond float64
	// Credential authorizes each attempt; nil sends requests as they are.
	Credential Credential
	Metrics    *metrics.Target
	Log        *slog.Logger
	// Timeout bounds each attempt.
	Timeout time.Duration
	// RetryMin and RetryMax bound the backoff before a retry.
	RetryMin, RetryMax time.Duration
	// ProbeMax caps the backoff between the probes of a down API (see
	// outage), which is how late its return may be noticed; 0, or more
	// than RetryMax: RetryMax.
	ProbeMax time.Duration
	// MaxRetries ends a call after that many retries; 0 retries until the
	// context ends.
	MaxRetries int
	// MaxAnswerBytes bounds what is read of an answer.
	MaxAnswerBytes int64
	// MaxInFlight bounds the calls in flight at once, retries and their
	// backoff included; 0 leaves them unbounded.
	MaxInFlight int
}

// Client sends the requests of one credential. Safe for concurrent use.
type Client struct {
	cfg   Config
	slots chan struct{} // nil: unbounded

	outage *outage // holds the requests back while the API is down
	own    bool    // cfg.Limiter was made by New: Close stops it

	mu     sync.Mutex
	logged string // the failure logged last; "" after a success
}

// New returns a client.
func New(cfg Config) *Client {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	probeMax := cfg.RetryMax
	if cfg.ProbeMax > 0 {
		probeMax = min(probeMax, cfg.ProbeMax)
	}
	c := &Client{cfg: cfg}
	if cfg.Limiter == nil {
		c.cfg.Limiter, c.own = NewLimiter(cfg.RequestsPerSecond), true
	}
	c.outage = newOutage(cfg.RetryMin, probeMax, cfg.Metrics.Down.WithLabelValues(cfg.Name).Add, c.outageChanged)
	if cfg.MaxInFlight > 0 {
		c.slots = make(chan struct{}, cfg.MaxInFlight)
	}
	return c
}

// Close stops what the client runs in the background (its own limiter's
// stall watcher) and waits for it; call it once its requests are over. A
// shared Limiter is its owner's to close.
func (c *Client) Close() {
	if c.own {
		c.cfg.Limiter.Close()
	}
}

// Do sends r until an answer ends it, and returns that answer's verdict:
// Done, Reject or Fatal (classify keeps whatever it decoded). The error is
// set when no answer ends the call: ctx ended, the retries ran out, or the
// credential cannot be renewed.
func (c *Client) Do(ctx context.Context, r Request, classify Classifier) (Verdict, error) {
	if c.slots != nil {
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			return Verdict{}, ctx.Err()
		}
		defer func() { <-c.slots }()
	}
	// tries counts the attempts, and the probes that failed while r waited
	// for one during an outage: MaxRetries bounds them together, so that
	// a request gives up after as many failures as before the probe.
	refusals, retries, tries, throttled := 0, 0, 0, false
	for {
		limit := 0
		if c.cfg.MaxRetries > 0 {
			limit = c.cfg.MaxRetries + 1 - tries
		}
		t, err := c.outage.admit(ctx, limit)
		if err != nil {
			return Verdict{}, err
		}
		if tries += t.failed; limit > 0 && t.failed >= limit {
			return Verdict{}, c.giveUp(r, tries, t.last)
		}
		back := c.outage.mark()
		v, tok, err := c.attempt(ctx, r, classify)
		if err != nil {
			if t.probe {
				c.outage.abandon()
			}
			return Verdict{}, err
		}
		tries++
		var failure error
		if v.Action == Retry {
			failure = v.Failure
		}
		down, probeIn := c.outage.answered(t, failure, v.Action == Done && (retries > 0 || throttled))
		if v.Action != Done && v.Action != Reject {
			// A refusal is counted by whoever reads its scope.
			c.cfg.Metrics.Errors.WithLabelValues(c.cfg.Name, v.Reason).Inc()
		}
		var wait time.Duration
		switch v.Action {
		case Done:
			c.outcome(r, "ok")
			if r.Rows > 0 {
				c.cfg.Metrics.BatchRows.WithLabelValues(c.cfg.Name, r.Op).Observe(float64(r.Rows))
			}
			c.succeeded()
			return v, nil
		case Reject:
			c.outcome(r, rejectOutcome(v.Reason))
			return v, nil
		case Fatal:
			c.outcome(r, "fatal")
			return v, nil
		case Refresh:
			refusals++
			if err := c.refused(tok, v.Failure, refusals); err != nil {
				c.outcome(r, "fatal")
				return Verdict{}, err
			}
		case Throttle:
			throttled = true
			wait = v.Reset
			if wait <= 0 {
				wait = DefaultReset
			}
			c.cfg.Limiter.Pause(wait)
		default:
			retries++
			wait = backoff.Delay(c.cfg.RetryMin, c.cfg.RetryMax, retries)
			if down {
				wait = probeIn
			}
		}
		c.outcome(r, "retry")
		if c.cfg.MaxRetries > 0 && tries > c.cfg.MaxRetries {
			return Verdict{}, c.giveUp(r, tries, v.Failure)
		}
		c.failed(r, tries, v, wait)
		if v.Action == Retry && !down {
			// A throttling pause is waited out at the Limiter, and an
			// outage's probe turn at admit, by every request of the
			// credential.
			if err := waitFor(ctx, wait, back); err != nil {
				return Verdict{}, err
			}
		}
	}
}

func (c *Client) giveUp(r Request, tries int, failure error) error {
	return fmt.Errorf("%s: %s on table %s: giving up after %d attempts: %w; check the network and the API's status, or raise max_retries",
		c.cfg.What, r.Op, r.Table, tries, failure)
}

func (c *Client) refused(tok string, failure error, n int) error {
	if c.cfg.Credential == nil {
		return fmt.Errorf("%s: the credential was refused: %w", c.cfg.What, failure)
	}
	return c.cfg.Credential.Refused(tok, failure, n)
}

// attempt sends r once. The error is set when ctx ended or no credential
// could be had; tok is the token the attempt carried.
func (c *Client) attempt(ctx context.Context, r Request, classify Classifier) (v Verdict, tok string, err error) {
	if c.cfg.Credential != nil {
		if tok, err = c.cfg.Credential.Token(ctx); err != nil {
			return Verdict{}, "", err
		}
	}
	// The token comes first: a refresh takes time, and the pause is
	// checked last before the request leaves.
	waited := time.Now()
	ticket, err := c.cfg.Limiter.wait(ctx)
	c.cfg.Metrics.ThrottleWait.WithLabelValues(c.cfg.Name).Add(time.Since(waited).Seconds())
	if err != nil {
		return Verdict{}, "", err
	}
	start := time.Now()
	ans, terr := c.send(ticket.Trace(ctx), r, tok)
	ticket.Done()
	c.cfg.Metrics.Latency.WithLabelValues(c.cfg.Name, r.Op).Observe(time.Since(start).Seconds())
	if ctx.Err() != nil {
		return Verdict{}, "", ctx.Err()
	}
	if terr != nil {
		return transportVerdict(terr), tok, nil
	}
	ans.Sent = start
	v = classify(&ans)
	if v.Action != Done && v.Failure == nil {
		v.Failure = fmt.Errorf("HTTP %d", ans.Status)
	}
	return v, tok, nil
}

// send makes one attempt under the request timeout. A non-nil error means
// no answer arrived.
func (c *Client) send(ctx context.Context, r Request, tok string) (Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return Answer{}, err
	}
	for k, vs := range r.Header {
		req.Header[k] = vs
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		return Answer{}, bareError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxAnswerBytes))
	if err != nil {
		return Answer{}, bareError(err)
	}
	return Answer{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// bareError drops the URL that *url.Error carries: a delete's filter can be
// kilobytes long.
func bareError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

func (c *Client) outcome(r Request, outcome string) {
	c.cfg.Metrics.Requests.WithLabelValues(c.cfg.Name, r.Table, r.Op, outcome).Inc()
}

func rejectOutcome(reason string) string {
	if reason == ReasonTable {
		return ReasonTable
	}
	return "rejected"
}
