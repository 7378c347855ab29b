// Package gptbotsfake is an in-process stand-in for the GPTBots Agent
// database API, for tests and demos. It enforces what the real service is
// documented to enforce (Bearer API key, a rate limit, at most 100 update
// items, 1000 delete items and a 5 MB body, filters on exactly one unique
// field, per-field type coercion, unique values of at most 256 characters,
// uniqueness, per-item failures in fail_detail) and can inject the failures a
// client must survive: 5xx answers, slow answers, dropped connections, writes
// applied but answers lost, throttling.
//
// Choices where the real service is undocumented:
//   - A wrong or missing key answers HTTP 401 {"code":401,"message":…}; past
//     the rate limit, HTTP 429 {"code":429,"message":…} with a Retry-After
//     header in seconds. Neither shape is documented.
//   - Coded errors answer HTTP 400 (40000), 403 (403106, 403131) or 500
//     (50000) with {"code","message"}; Options.CodedErrorsAsOK answers them
//     with HTTP 200 instead.
//   - A successful update answers exactly the documented fields, without a
//     code: {"totalCount","success_count","fail_count","fail_detail"}, where
//     fail_detail is always an array. Delete answers {"code":0,"message":"OK"}.
//   - The page answer is {"table_info":{"id","name","description",
//     "field_count","fields":[{"name","description","type","required",
//     "unique"}]},"records":[{"record_id","value":{…}}],"total"}, the newer
//     documented shape; Options.WrapPage wraps it in {"code":0,"message":"OK",
//     "data":…}, the older one. A record's value holds only fields that are
//     set.
//   - Values are coerced by field type: INT takes integers and integer
//     strings within 64 bits; FLOAT numbers and numeric strings, kept with
//     their exact digits; BOOLEAN true, false, "true" and "false"; DATETIME
//     only "YYYY-MM-DD HH:MM:SS" strings; TEXT strings, and numbers as their
//     text. Anything else fails the item; null clears the field.
//   - An update naming an unknown record_id with is_create inserts a row
//     under a new id; record ids are 24 hex digits.
//   - "5 MB" is read as 5,000,000 bytes, the stricter reading.
//   - A filter value that cannot be coerced to its field's type fails that
//     item in an update and fails the whole request (40000) in a delete or a
//     page read; a required field left empty fails the item.
package gptbotsfake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/replicator-cdc/replicator/targets/internal/fakekit"
)

// Documented limits.
const (
	MaxUpdateItems = 100
	MaxDeleteItems = 1000
	MaxPageSize    = 100
	MaxUniqueChars = 256
)

// Error codes the API answers.
const (
	CodeInvalid       = 40000
	CodeInternal      = 50000
	CodeTableNotFound = 403106
	CodeNoAccess      = 403131
	CodeUnauthorized  = 401
	CodeThrottled     = 429
)

// API paths.
const (
	UpdatePath = "/v2/database/update/record"
	DeletePath = "/v2/database/delete/record"
	PagePath   = "/v1/database/records/page"
)

// hardBodyCap bounds what the server reads of any request, so that an
// oversized body is answered with 40000 rather than a broken connection.
const hardBodyCap = 64 << 20

// Options configures a Server. Zero fields take the documented defaults.
type Options struct {
	// APIKey is the only key the server accepts; default "gptbots-fake-key".
	APIKey string
	// RequestsPerSecond limits calls per API key in any one-second window;
	// default 5, negative for no limit.
	RequestsPerSecond int
	// MaxBodyBytes is the largest update body accepted; default 5,000,000.
	MaxBodyBytes int
	// SlowDelay is how long a FaultSlow answer waits (choose it longer than
	// the client's timeout); default 10s.
	SlowDelay time.Duration
	// RetryAfter is the Retry-After header of a 429, in seconds; default 1.
	RetryAfter int
	// CodedErrorsAsOK answers 40000, 403106, 403131 and 50000 with HTTP 200.
	CodedErrorsAsOK bool
	// WrapPage wraps the page answer in {"code":0,"message":"OK","data":…}.
	WrapPage bool
	// Seed seeds the generator that draws random faults and jitter.
	Seed uint64
	// Latency delays every update and delete before it is applied, and
	// Jitter adds a random part of up to its length; default none.
	Latency time.Duration
	Jitter  time.Duration
}

func (o *Options) defaults() {
	if o.APIKey == "" {
		o.APIKey = "gptbots-fake-key"
	}
	if o.RequestsPerSecond == 0 {
		o.RequestsPerSecond = 5
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 5_000_000
	}
	if o.SlowDelay == 0 {
		o.SlowDelay = 10 * time.Second
	}
	if o.RetryAfter == 0 {
		o.RetryAfter = 1
	}
}

// Server is a running fake. All methods are safe for concurrent use.
type Server struct {
	opts    Options
	srv     *fakekit.Server
	limiter fakekit.Window
	log     fakekit.Log[Request]
	faults  *fakekit.Faults[Fault]

	mu     sync.Mutex
	tables map[string]*table
	nextID uint64
	reject RejectFunc
	// invalidHook is SetInvalid's hook.
	invalidHook RejectFunc
}

// New starts a server on a loopback port.
func New(opts Options) *Server {
	opts.defaults()
	s := &Server{
		opts:   opts,
		faults: fakekit.NewFaults[Fault](opts.Seed),
		tables: make(map[string]*table),
	}
	s.srv = fakekit.Start(s.serve)
	return s
}

// URL is the base URL to configure clients with.
func (s *Server) URL() string { return s.srv.URL() }

// Options returns the options in force, defaults filled in.
func (s *Server) Options() Options { return s.opts }

// Close stops the server, cutting short any slow answer.
func (s *Server) Close() { s.srv.Close() }

// answer is a handler's verdict, written by serve.
type answer struct {
	status int
	body   any
	code   int
	table  string
	items  int
}

type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (s *Server) coded(code int, table, format string, args ...any) answer {
	status := http.StatusOK
	if !s.opts.CodedErrorsAsOK {
		switch code {
		case CodeInvalid:
			status = http.StatusBadRequest
		case CodeTableNotFound, CodeNoAccess:
			status = http.StatusForbidden
		case CodeInternal:
			status = http.StatusInternalServerError
		}
	}
	return answer{status: status, code: code, table: table, body: apiError{code, fmt.Sprintf(format, args...)}}
}

func (s *Server) invalid(table, format string, args ...any) answer {
	return s.coded(CodeInvalid, table, "invalid parameter: "+format, args...)
}

// serve runs the gateway steps (method, route, auth, rate limit), then any
// injected fault, then the call itself.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, arrived time.Time) {
	call := &Request{Time: arrived, Path: r.URL.Path}
	var h func([]byte) answer
	switch r.URL.Path {
	case UpdatePath:
		h = s.update
	case DeletePath:
		h = s.delete
	case PagePath:
		h = s.page
	default:
		s.write(w, call, answer{status: http.StatusNotFound, code: 404, body: apiError{404, "not found"}})
		return
	}
	if r.Method != http.MethodPost {
		s.write(w, call, answer{status: http.StatusMethodNotAllowed, code: 405, body: apiError{405, "method not allowed"}})
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.opts.APIKey {
		s.write(w, call, answer{status: http.StatusUnauthorized, code: CodeUnauthorized, body: apiError{CodeUnauthorized, "invalid api key"}})
		return
	}
	if _, admitted := s.limiter.Admit(call.Time, s.opts.RequestsPerSecond); !admitted {
		s.throttle(w, call)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, hardBodyCap))
	call.Bytes = len(body)
	if err != nil {
		s.record(call)
		return
	}
	s.withFault(w, r, call, s.faults.Next(), func() answer { return h(body) })
}

func (s *Server) throttle(w http.ResponseWriter, call *Request) {
	call.Reset = time.Duration(s.opts.RetryAfter) * time.Second
	w.Header().Set("Retry-After", fmt.Sprint(s.opts.RetryAfter))
	s.write(w, call, answer{status: http.StatusTooManyRequests, code: CodeThrottled, body: apiError{CodeThrottled, "too many requests"}})
}

// write sends the answer and logs the call.
func (s *Server) write(w http.ResponseWriter, call *Request, a answer) {
	call.Status, call.Code, call.Table, call.Items = a.status, a.code, a.table, a.items
	s.record(call)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(a.status)
	_ = json.NewEncoder(w).Encode(a.body)
}

// decodeJSON decodes one JSON value, keeping numbers exact.
func decodeJSON(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}
