package feishu

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/apicall"
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
	u := w.base + c.path
	if len(c.query) > 0 {
		u += "?" + c.query.Encode()
	}
	h := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	if c.prefer != "" {
		h.Set("Prefer", c.prefer)
	}
	var ans answer
	v, err := w.api.Do(ctx, apicall.Request{Op: c.op, Table: c.table, Rows: c.rows, Method: c.method, URL: u, Header: h, Body: c.body},
		func(a *apicall.Answer) apicall.Verdict {
			ans = decodeAnswer(a.Status, a.Header, a.Body)
			return classify(ans)
		})
	switch {
	case err != nil:
		return nil, err
	case v.Action == apicall.Done:
		return ans.data, nil
	case v.Action == apicall.Reject:
		return nil, &rejectError{&apiError{status: ans.status, code: ans.code, msg: ans.msg}}
	}
	return nil, w.fatal(c, ans, v.Failure)
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
