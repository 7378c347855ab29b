package gptbots

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/replicator-cdc/replicator/targets/apicall"
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
	rows  int
}

// tableError is an answer about the table (403106, 403131): while
// running the write waits for it; at Prepare it is fatal.
type tableError struct{ message string }

func (e *tableError) Error() string { return e.message }

// invalidError is the API's 40000: the request as a whole is invalid.
type invalidError struct{ message string }

func (e *invalidError) Error() string { return "invalid parameter: " + e.message }

// send posts the call, retrying what can be retried. It returns the answer
// body, an *invalidError, a *tableError, or a fatal error.
func (w *Writer) send(ctx context.Context, c call) ([]byte, error) {
	var r reply
	v, err := w.api.Do(ctx, apicall.Request{
		Op: c.op, Table: c.table, Rows: c.rows, Method: http.MethodPost, URL: w.cfg.BaseURL + c.path, Header: w.header, Body: c.body,
	}, func(a *apicall.Answer) apicall.Verdict {
		r = decodeReply(a)
		return classify(r)
	})
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("gptbots target %q: %s on table %s stopped: %w", w.cfg.Name, c.op, c.table, err)
	case err != nil:
		return nil, err
	case v.Action == apicall.Done:
		return r.body, nil
	case v.Action == apicall.Reject:
		w.metrics.Errors.WithLabelValues(w.cfg.Name, v.Reason).Inc()
		if v.Reason == apicall.ReasonTable {
			return nil, &tableError{message: w.fatal(v, c, r).Error()}
		}
		return nil, &invalidError{message: describe(r)}
	}
	return nil, w.fatal(v, c, r)
}

// decodeReply reads the envelope's code and message, if the body is one.
func decodeReply(a *apicall.Answer) reply {
	r := reply{status: a.Status, body: a.Body, retryAfter: apicall.Seconds(a.Header.Get("Retry-After"))}
	var env struct {
		Code    *flexInt `json:"code"`
		Message string   `json:"message"`
	}
	if json.Unmarshal(a.Body, &env) == nil && bytes.HasPrefix(bytes.TrimSpace(a.Body), []byte("{")) {
		r.jsonBody, r.message = true, env.Message
		if env.Code != nil {
			r.code, r.hasCode = int(*env.Code), true
		}
	}
	return r
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

// fatal explains an answer retrying cannot fix. It never quotes the key.
func (w *Writer) fatal(v apicall.Verdict, c call, r reply) error {
	var hint string
	switch v.Reason {
	case apicall.ReasonUnauthorized:
		hint = "API key rejected: check the target's api_key"
	case apicall.ReasonTable:
		hint = fmt.Sprintf("table %s not found or not accessible: check the table id in the mapping, that the table belongs to the agent whose API key is configured, and the agent's permissions on it", c.table)
	case apicall.ReasonForbidden:
		hint = fmt.Sprintf("access to table %s refused: check the API key's agent and table permissions", c.table)
	default:
		hint = fmt.Sprintf("unexpected answer to %s on table %s", c.op, c.table)
	}
	return fmt.Errorf("gptbots target %q: %s (%s)", w.cfg.Name, hint, describe(r))
}

// describe summarizes a reply for logs and errors.
func describe(r reply) string {
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
