package feishu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/backoff"
	"github.com/replicator-cdc/replicator/targets/pace"
)

// call is one API request, sent again as often as it takes.
type call struct {
	op     string // upsert, delete or schema: the metrics' operation label
	table  string
	method string
	path   string // below the workspace, e.g. "/tables/t/records"
	query  url.Values
	body   []byte
	prefer string
	rows   int
}

// answer is a decoded Feishu envelope.
type answer struct {
	status int
	code   int
	msg    string
	data   json.RawMessage
	header http.Header
}

// apiError is a failure the API answered, without the request's secrets.
type apiError struct {
	status int
	code   int
	msg    string
}

func (e *apiError) Error() string {
	if e.code == noCode {
		return fmt.Sprintf("HTTP %d with a body that is not a Feishu answer: %q", e.status, e.msg)
	}
	return fmt.Sprintf("code %d: %s (HTTP %d)", e.code, e.msg, e.status)
}

// rejectError says the API refused the request's rows (code 2320001).
type rejectError struct{ *apiError }

const maxAnswerBytes = 32 << 20

// do sends c until the API confirms it, and returns the answer's data. It
// returns a *rejectError when the API refuses the rows, the context's error
// when ctx ends, and otherwise an error telling the user what to do.
func (w *Writer) do(ctx context.Context, c call) (json.RawMessage, error) {
	refreshes, retries := 0, 0
	for attempt := 1; ; attempt++ {
		ticket, err := w.waitTurn(ctx)
		if err != nil {
			return nil, err
		}
		tok, err := w.tokens.token(ctx)
		if err != nil {
			ticket.Done()
			return nil, err
		}
		start := time.Now()
		ans, terr := w.send(ticket.Trace(ctx), c, tok)
		ticket.Done()
		w.m.Latency.WithLabelValues(w.cfg.Name, c.op).Observe(time.Since(start).Seconds())
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		cls := classify(ans.status, ans.code, terr)
		if cls == classReject && missingConstraint(ans.msg) {
			cls = classFatal
		}
		if cls == classOK {
			w.m.Requests.WithLabelValues(w.cfg.Name, c.table, c.op, "ok").Inc()
			w.m.BatchRows.WithLabelValues(w.cfg.Name, c.op).Observe(float64(c.rows))
			return ans.data, nil
		}
		if cls != classReject {
			// A refusal is counted by whoever reads its scope.
			w.m.Errors.WithLabelValues(w.cfg.Name, reason(cls, terr)).Inc()
		}
		refused := &apiError{status: ans.status, code: ans.code, msg: ans.msg}
		failure := error(refused)
		if terr != nil {
			failure = terr
		}
		var fatal error
		switch cls {
		case classReject:
			w.m.Requests.WithLabelValues(w.cfg.Name, c.table, c.op, "rejected").Inc()
			return nil, &rejectError{refused}
		case classFatal:
			fatal = w.fatal(c, ans, failure)
		case classRefresh:
			refreshes++
			// A token refused right after a refresh will be refused again.
			if refreshes > 2 {
				fatal = fmt.Errorf("feishu target %q: the API keeps refusing freshly refreshed tokens (%v): authorize again with `replicator feishu-login --config FILE --target %s`", w.cfg.Name, failure, w.cfg.Name)
			} else {
				fatal = w.tokens.expired(tok, failure)
			}
		}
		if fatal != nil {
			w.m.Requests.WithLabelValues(w.cfg.Name, c.table, c.op, "fatal").Inc()
			return nil, fatal
		}
		w.m.Requests.WithLabelValues(w.cfg.Name, c.table, c.op, "retry").Inc()
		if w.cfg.MaxRetries > 0 && attempt > w.cfg.MaxRetries {
			return nil, fmt.Errorf("feishu target %q: %s %s: giving up after %d attempts: %w", w.cfg.Name, c.op, c.table, attempt, failure)
		}
		var wait time.Duration
		switch cls {
		case classRefresh:
			// No wait: the next attempt carries a refreshed token.
		case classThrottle:
			wait = resetAfter(ans.header)
			w.pause(wait)
		default:
			retries++
			wait = backoff.Delay(w.cfg.RetryMin, w.cfg.RetryMax, retries)
		}
		w.log.Warn("feishu request failed; retrying", "table", c.table, "operation", c.op, "rows", c.rows,
			"attempt", attempt, "error", failure.Error(), "wait", wait)
		if cls != classThrottle {
			if err := backoff.Sleep(ctx, wait); err != nil {
				return nil, err
			}
		}
	}
}

// fatal explains a failure that needs a person.
func (w *Writer) fatal(c call, ans answer, failure error) error {
	if missingConstraint(ans.msg) {
		return w.missingConstraintError(c, failure)
	}
	var hint string
	switch ans.code {
	case codeScopeMissing, codeGrantMissing, codeNoPermission:
		hint = fmt.Sprintf("the user_access_token lacks the scope %s (or the app is not granted it): a person must add the scope to the app in the Feishu developer console, then authorize again with `replicator feishu-login --config FILE --target %s`", WriteScope, w.cfg.Name)
	case codeWrongAppCreds:
		hint = "the app credentials are wrong: check oauth app_id and app_secret"
	case codeMissingToken:
		hint = "the request carried no token"
	case noCode:
		hint = "check base_url"
	default:
		hint = "check workspace_id and the table"
	}
	return fmt.Errorf("feishu target %q: %s %s: %w: %s", w.cfg.Name, c.op, c.table, failure, hint)
}

// send makes one attempt under the request timeout. A non-nil error means
// no answer arrived.
func (w *Writer) send(ctx context.Context, c call, tok string) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	u := w.base + c.path
	if len(c.query) > 0 {
		u += "?" + c.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, c.method, u, bytes.NewReader(c.body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if c.prefer != "" {
		req.Header.Set("Prefer", c.prefer)
	}
	resp, err := w.http.Do(req)
	if err != nil {
		return answer{}, bareError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return answer{}, bareError(err)
	}
	return decodeAnswer(resp.StatusCode, resp.Header, body), nil
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

func decodeAnswer(status int, header http.Header, body []byte) answer {
	var env struct {
		Code *int            `json:"code"`
		Msg  string          `json:"msg"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Code == nil {
		return answer{status: status, code: noCode, msg: snippet(body), header: header}
	}
	// The message may quote a refused value, which can be megabytes.
	return answer{status: status, code: *env.Code, msg: replicator.Abbreviate(env.Msg, maxMsgBytes), data: env.Data, header: header}
}

// maxMsgBytes bounds an API message kept for errors, logs and dead letters.
const maxMsgBytes = 512

func snippet(b []byte) string {
	const n = 200
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// resetAfter reads how long a throttled client must wait; 1s when the
// header is missing or odd.
func resetAfter(h http.Header) time.Duration {
	n, err := strconv.Atoi(h.Get("x-ogw-ratelimit-reset"))
	if err != nil || n <= 0 {
		return time.Second
	}
	return min(time.Duration(n)*time.Second, 5*time.Minute)
}

// pause holds back every request of the writer for d, as a throttling
// answer asks of the whole app.
func (w *Writer) pause(d time.Duration) {
	w.pauseMu.Lock()
	defer w.pauseMu.Unlock()
	if until := time.Now().Add(d); until.After(w.pauseUntil) {
		w.pauseUntil = until
	}
}

// waitTurn waits out a throttling pause, the rate limiter and the request
// window, and counts the time waited. Callers queue for the limiter one at
// a time, so that a reservation is made only when its caller is running:
// goroutines that reserved ahead and then all woke late from a stall (GC, a
// busy machine) would otherwise arrive at the server together. The ticket
// must be stamped by the request (Trace) and ended (Done).
func (w *Writer) waitTurn(ctx context.Context) (*pace.Ticket, error) {
	start := time.Now()
	defer func() { w.m.ThrottleWait.WithLabelValues(w.cfg.Name).Add(time.Since(start).Seconds()) }()
	select {
	case w.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-w.turn }()
	w.pauseMu.Lock()
	until := w.pauseUntil
	w.pauseMu.Unlock()
	if err := backoff.Sleep(ctx, time.Until(until)); err != nil {
		return nil, err
	}
	if err := w.limiter.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// The limiter refuses early a wait that would outlast ctx.
		return nil, fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
	}
	return w.window.Acquire(ctx)
}
