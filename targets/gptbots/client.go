package gptbots

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/replicator-cdc/replicator/targets/backoff"
)

// maxAnswerBytes bounds what is read of an answer; an update answer echoes
// failed items, so it can approach the request's size.
const maxAnswerBytes = 64 << 20

// call is one API request, sent until it gets a definitive answer.
type call struct {
	op    string // metric label: upsert, delete, schema
	table string
	path  string
	body  []byte
}

// tableError is an answer about the table (403106, 403131): while
// running the write waits for it; at Prepare it is fatal.
type tableError struct{ message string }

func (e *tableError) Error() string { return e.message }

// invalidError is the API's 40000: the request as a whole is invalid.
type invalidError struct{ message string }

func (e *invalidError) Error() string { return "invalid parameter: " + e.message }

// send posts the call, retrying what can be retried. It returns the answer
// body, an *invalidError, or a fatal error.
func (w *Writer) send(ctx context.Context, c call) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		if err := w.waitTurn(ctx); err != nil {
			return nil, w.stopped(c, err)
		}
		start := time.Now()
		r, retryAfter := w.post(ctx, c)
		w.metrics.Latency.WithLabelValues(w.cfg.Name, c.op).Observe(time.Since(start).Seconds())
		if err := ctx.Err(); err != nil {
			return nil, w.stopped(c, err)
		}
		v := classify(r)
		w.metrics.Requests.WithLabelValues(w.cfg.Name, c.table, c.op, outcome(v.action)).Inc()
		if v.action != actOK {
			w.metrics.Errors.WithLabelValues(w.cfg.Name, v.reason).Inc()
		}
		switch v.action {
		case actOK:
			return r.body, nil
		case actSplit:
			return nil, &invalidError{message: describe(r)}
		case actTable:
			return nil, &tableError{message: w.fatal(v, c, r).Error()}
		case actFatal:
			return nil, w.fatal(v, c, r)
		}
		if w.cfg.MaxRetries > 0 && attempt > w.cfg.MaxRetries {
			return nil, fmt.Errorf("gptbots target %q: %s on table %s failed %d times, last: %s; check the network and the API's status, or raise max_retries",
				w.cfg.Name, c.op, c.table, attempt, describe(r))
		}
		delay := backoff.Delay(w.cfg.BackoffMin, w.cfg.BackoffMax, attempt)
		if retryAfter > delay {
			w.metrics.ThrottleWait.WithLabelValues(w.cfg.Name).Add(retryAfter.Seconds())
			delay = retryAfter
		}
		w.log.Warn("gptbots call failed, retrying", "table", c.table, "operation", c.op,
			"attempt", attempt, "reason", v.reason, "error", describe(r), "retry_in", delay)
		if err := backoff.Sleep(ctx, delay); err != nil {
			return nil, w.stopped(c, err)
		}
	}
}

// waitTurn waits for the rate limiter and counts the wait.
func (w *Writer) waitTurn(ctx context.Context) error {
	start := time.Now()
	err := w.limiter.Wait(ctx)
	w.metrics.ThrottleWait.WithLabelValues(w.cfg.Name).Add(time.Since(start).Seconds())
	if err != nil && ctx.Err() == nil {
		// The limiter refuses early a turn that would come after the
		// deadline; callers should see the deadline.
		return fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
	}
	return err
}

// post makes one attempt. The second result is the Retry-After wait the
// server asked for, if any.
func (w *Writer) post(ctx context.Context, c call) (reply, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.BaseURL+c.path, bytes.NewReader(c.body))
	if err != nil {
		return reply{err: err}, 0
	}
	req.Header.Set("Authorization", "Bearer "+w.cfg.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return reply{err: err}, 0
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return reply{err: err}, 0
	}
	r := reply{status: resp.StatusCode, body: body}
	var env struct {
		Code    *flexInt `json:"code"`
		Message string   `json:"message"`
	}
	if json.Unmarshal(body, &env) == nil && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		r.jsonBody, r.message = true, env.Message
		if env.Code != nil {
			r.code, r.hasCode = int(*env.Code), true
		}
	}
	return r, retryAfter(resp.Header.Get("Retry-After"))
}

// flexInt reads a code sent as a number or as a numeric string.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	n, err := strconv.Atoi(strings.Trim(string(b), `"`))
	if err != nil {
		return fmt.Errorf("code %s is not an integer", b)
	}
	*f = flexInt(n)
	return nil
}

// retryAfter reads a Retry-After header in seconds; its use by the API is
// undocumented, so anything else is ignored.
func retryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n <= 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, time.Hour)
}

func outcome(a action) string {
	switch a {
	case actOK:
		return "ok"
	case actRetry:
		return "retry"
	case actSplit:
		return "rejected"
	case actTable:
		return "table"
	}
	return "fatal"
}

func (w *Writer) stopped(c call, err error) error {
	return fmt.Errorf("gptbots target %q: %s on table %s stopped: %w", w.cfg.Name, c.op, c.table, err)
}

// fatal explains an answer retrying cannot fix. It never quotes the key.
func (w *Writer) fatal(v verdict, c call, r reply) error {
	var hint string
	switch v.reason {
	case "unauthorized":
		hint = "API key rejected: check the target's api_key"
	case "table":
		hint = fmt.Sprintf("table %s not found or not accessible: check the table id in the mapping, that the table belongs to the agent whose API key is configured, and the agent's permissions on it", c.table)
	case "forbidden":
		hint = fmt.Sprintf("access to table %s refused: check the API key's agent and table permissions", c.table)
	default:
		hint = fmt.Sprintf("unexpected answer to %s on table %s", c.op, c.table)
	}
	return fmt.Errorf("gptbots target %q: %s (%s)", w.cfg.Name, hint, describe(r))
}

// describe summarizes a reply for logs and errors.
func describe(r reply) string {
	if r.err != nil {
		return r.err.Error()
	}
	s := fmt.Sprintf("HTTP %d", r.status)
	if r.hasCode {
		s += fmt.Sprintf(", code %d", r.code)
	}
	msg := r.message
	if !r.jsonBody {
		msg = string(r.body)
	}
	if msg = strings.TrimSpace(msg); msg != "" {
		const most = 200
		if len(msg) > most {
			msg = strings.ToValidUTF8(msg[:most], "") + "…"
		}
		s += ": " + msg
	}
	return s
}
