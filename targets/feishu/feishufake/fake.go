// Package feishufake is an in-process stand-in for the Feishu aPaaS workspace
// table API and its OAuth endpoints, for tests and demos. It enforces what the
// real service is documented to enforce (envelope, auth, rate limit, the
// 500-row limit, PostgREST upsert and filter rules, PostgreSQL type coercion)
// and can inject the failures a client must survive: 5xx answers, slow
// answers, dropped connections, changes applied but answers lost, throttling.
//
// The schema answer says no more than the real one: the system primary key
// _id is a uuid, NOT NULL, without a default_value (the platform fills it),
// and composite unique constraints do not show in the column list, although
// the fake enforces them and an upsert whose on_conflict no unique
// constraint matches fails with PostgreSQL's own error text.
//
// Choices where the real service is undocumented: an unknown workspace or
// table answers HTTP 400 with code 2320001; token errors answer HTTP 401
// (99991661 missing, 99991668 invalid, 99991677 expired); the OAuth endpoint
// answers RFC 6749 style with the fields at the top level and Feishu error
// codes (20002 wrong client secret, 20026 unknown, 20037 expired, 20064
// revoked, 20073 already used refresh token). A refused value answers 400/
// 2320001 with msg "param is invalid: " and PostgreSQL's own message, which
// quotes the value but names neither the row nor (for a value its type
// refuses) the column, as PostgREST passes it on; that Feishu's msg carries
// it is unverified. Faults hit record writes (POST and DELETE of records)
// and, through their own queue, the token endpoint; FailTable makes every
// call naming a table fail for a while.
package feishufake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/replicator-cdc/replicator/targets/internal/fakekit"
)

// Options configures a Server. Zero fields take the documented defaults.
type Options struct {
	// WorkspaceID is the only workspace the server knows; default "workspace_fake".
	WorkspaceID string
	// AppID and AppSecret are the app credentials the OAuth endpoint accepts;
	// defaults "cli_fake" and "secret_fake".
	AppID     string
	AppSecret string
	// RequestsPerSecond limits record calls per app in any one-second window;
	// default 10, negative for no limit.
	RequestsPerSecond int
	// TokenTTL is the access token lifetime; default 2h.
	TokenTTL time.Duration
	// RefreshTokenTTL is the refresh token lifetime; default 30 days.
	RefreshTokenTTL time.Duration
	// SlowDelay is how long a FaultSlow answer waits (choose it longer than
	// the client's timeout); default 10s.
	SlowDelay time.Duration
	// ThrottleReset is the x-ogw-ratelimit-reset value of an injected
	// FaultThrottle, in seconds; default 1.
	ThrottleReset int
	// Seed seeds the generator that draws random faults and jitter.
	Seed uint64
	// Latency delays every record write before it is applied, and Jitter
	// adds a random part of up to its length; default none.
	Latency time.Duration
	Jitter  time.Duration
	// History keeps every applied row change for Server.History.
	History bool
}

func (o *Options) defaults() {
	if o.WorkspaceID == "" {
		o.WorkspaceID = "workspace_fake"
	}
	if o.AppID == "" {
		o.AppID = "cli_fake"
	}
	if o.AppSecret == "" {
		o.AppSecret = "secret_fake"
	}
	if o.RequestsPerSecond == 0 {
		o.RequestsPerSecond = 10
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = 2 * time.Hour
	}
	if o.RefreshTokenTTL == 0 {
		o.RefreshTokenTTL = 30 * 24 * time.Hour
	}
	if o.SlowDelay == 0 {
		o.SlowDelay = 10 * time.Second
	}
	if o.ThrottleReset == 0 {
		o.ThrottleReset = 1
	}
}

// Server is a running fake. All methods are safe for concurrent use.
type Server struct {
	opts    Options
	srv     *fakekit.Server
	limiter fakekit.Window
	log     fakekit.Log[Request]
	// faults hit record writes; tokenFaults the token endpoint.
	faults      *fakekit.Faults[Fault]
	tokenFaults *fakekit.Faults[Fault]

	mu          sync.Mutex
	tables      map[string]*table
	auth        authState
	tableFaults map[string]tableFault
	history     map[string][]Change
}

// New starts a server on a loopback port.
func New(opts Options) *Server {
	opts.defaults()
	s := &Server{
		opts:        opts,
		faults:      fakekit.NewFaults[Fault](opts.Seed),
		tokenFaults: fakekit.NewFaults[Fault](opts.Seed),
		tables:      make(map[string]*table),
		auth:        newAuthState(),
	}
	s.srv = fakekit.Start(s.serve)
	return s
}

// URL is the base URL, to use as both the open platform and the accounts base.
func (s *Server) URL() string { return s.srv.URL() }

// Options returns the options in force, defaults filled in.
func (s *Server) Options() Options { return s.opts }

// Close stops the server, cutting short any slow answer.
func (s *Server) Close() { s.srv.Close() }

const (
	apiPrefix       = "/open-apis/apaas/v1/workspaces/"
	tokenPath       = "/open-apis/authen/v2/oauth/token"
	authorizePath   = "/open-apis/authen/v1/authorize"
	codeInvalid     = 2320001
	codeThrottled   = 99991400
	maxRequestBytes = 64 << 20
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request, arrived time.Time) {
	r = r.WithContext(context.WithValue(r.Context(), infoKey{}, &requestInfo{arrived: arrived}))
	switch {
	case r.URL.Path == tokenPath && r.Method == http.MethodPost:
		s.serveToken(w, r)
	case r.URL.Path == authorizePath && r.Method == http.MethodGet:
		s.serveAuthorize(w, r)
	case strings.HasPrefix(r.URL.Path, apiPrefix):
		s.serveAPI(w, r)
	default:
		s.notFound(w, r)
	}
}

// notFound answers an unknown path the way the gateway does: plain text,
// no envelope.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.record(r, "", 0, http.StatusNotFound, 0)
	http.NotFound(w, r)
}

// serveAPI runs the gateway steps in the order the platform does: auth, rate
// limit, then the workspace call itself.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	ws, table, records, ok := splitPath(strings.TrimPrefix(r.URL.Path, apiPrefix))
	s.mu.Lock()
	arrived := info(r).arrived
	if status, code, msg := s.auth.check(r.Header.Get("Authorization"), records && r.Method != http.MethodGet, arrived); code != 0 {
		s.mu.Unlock()
		s.answer(w, r, table, 0, status, code, msg, nil)
		return
	}
	if records {
		if wait, admitted := s.limiter.Admit(arrived, s.opts.RequestsPerSecond); !admitted {
			s.mu.Unlock()
			// The reset header counts whole seconds, rounded up.
			s.throttle(w, r, table, int((wait+time.Second-1)/time.Second))
			return
		}
	}
	s.mu.Unlock()
	if msg, failing := s.tableFailure(table); ok && failing {
		s.answer(w, r, table, 0, http.StatusBadRequest, codeInvalid, msg, nil)
		return
	}
	switch {
	case !ok:
		s.notFound(w, r)
	case ws != s.opts.WorkspaceID:
		s.answer(w, r, table, 0, http.StatusBadRequest, codeInvalid, fmt.Sprintf("param is invalid: workspace %q not found", ws), nil)
	case !records && r.Method == http.MethodGet:
		s.serveSchema(w, r, table)
	case records && r.Method == http.MethodGet:
		s.serveList(w, r, table)
	case records && (r.Method == http.MethodPost || r.Method == http.MethodDelete):
		s.withFaults(w, r, table, s.faults.Next(), s.serveWrite)
	default:
		s.answer(w, r, table, 0, http.StatusMethodNotAllowed, 404, "method not allowed", nil)
	}
}

// splitPath reads "{workspace}/tables/{table}[/records]".
func splitPath(p string) (ws, table string, records, ok bool) {
	parts := strings.Split(p, "/")
	if len(parts) < 3 || parts[1] != "tables" || parts[2] == "" {
		return "", "", false, false
	}
	switch {
	case len(parts) == 3:
		return parts[0], parts[2], false, true
	case len(parts) == 4 && parts[3] == "records":
		return parts[0], parts[2], true, true
	}
	return "", "", false, false
}

func (s *Server) serveWrite(w http.ResponseWriter, r *http.Request, table string) {
	if !s.delay(r) {
		s.record(r, table, 0, 0, 0)
		return
	}
	if r.Method == http.MethodPost {
		s.serveInsert(w, r, table)
		return
	}
	s.serveDelete(w, r, table)
}

// envelope is the shape of every workspace API answer.
type envelope struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
	Data any    `json:"data"`
}

// answer writes the envelope and logs the request with the number of rows it
// carried or touched.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, table string, rows, status, code int, msg string, data any) {
	if data == nil {
		data = struct{}{}
	}
	s.record(r, table, rows, status, code)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(envelope{Code: code, Msg: msg, Data: data})
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, table string, err error) {
	s.answer(w, r, table, 0, http.StatusBadRequest, codeInvalid, "param is invalid: "+err.Error(), nil)
}

func (s *Server) throttle(w http.ResponseWriter, r *http.Request, table string, resetSeconds int) {
	info(r).reset = time.Duration(resetSeconds) * time.Second
	w.Header().Set("x-ogw-ratelimit-limit", fmt.Sprint(s.opts.RequestsPerSecond))
	w.Header().Set("x-ogw-ratelimit-reset", fmt.Sprint(resetSeconds))
	s.answer(w, r, table, 0, http.StatusTooManyRequests, codeThrottled, "request trigger frequency limit", nil)
}
