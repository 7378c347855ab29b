package feishufake

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/replicator-cdc/replicator/targets/internal/fakekit"
)

// oauthAnswer is the token endpoint's RFC 6749 shape plus Feishu's code.
type oauthAnswer struct {
	Code                  int    `json:"code"`
	Error                 string `json:"error,omitempty"`
	ErrorDescription      string `json:"error_description,omitempty"`
	AccessToken           string `json:"access_token,omitempty"`
	ExpiresIn             int64  `json:"expires_in,omitempty"`
	RefreshToken          string `json:"refresh_token,omitempty"`
	RefreshTokenExpiresIn int64  `json:"refresh_token_expires_in,omitempty"`
	TokenType             string `json:"token_type,omitempty"`
	Scope                 string `json:"scope,omitempty"`
}

func oauthError(status, code int, kind, desc string) (int, oauthAnswer) {
	return status, oauthAnswer{Code: code, Error: kind, ErrorDescription: desc}
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	f := s.tokenFaults.Next()
	info(r).fault = f
	switch f {
	case FaultDrop:
		s.record(r, "", 0, 0, 0)
		fakekit.HangUp(w)
		return
	case FaultServerError:
		s.writeOAuth(w, r, http.StatusInternalServerError, oauthAnswer{Code: 20050, Error: "server_error", ErrorDescription: "internal server error"})
		return
	case FaultThrottle:
		s.throttle(w, r, "", s.opts.ThrottleReset)
		return
	case FaultSlow:
		if !s.slow(r) {
			s.record(r, "", 0, 0, 0)
			return
		}
	}
	params, err := tokenParams(r)
	var status int
	var ans oauthAnswer
	if err != nil {
		status, ans = oauthError(http.StatusBadRequest, 20001, "invalid_request", err.Error())
	} else {
		s.mu.Lock()
		status, ans = s.grant(params, time.Now())
		s.mu.Unlock()
	}
	if f == FaultLostAnswer {
		s.record(r, "", 0, 0, 0)
		fakekit.HangUp(w)
		return
	}
	s.writeOAuth(w, r, status, ans)
}

func (s *Server) writeOAuth(w http.ResponseWriter, r *http.Request, status int, ans oauthAnswer) {
	s.record(r, "", 0, status, ans.Code)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ans)
}

// tokenParams reads a JSON or form-encoded token request.
func tokenParams(r *http.Request) (url.Values, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var m map[string]string
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&m); err != nil {
			return nil, fmt.Errorf("body is not a JSON object of strings: %v", err)
		}
		v := url.Values{}
		for k, x := range m {
			v.Set(k, x)
		}
		return v, nil
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		return r.PostForm, nil
	}
	return nil, fmt.Errorf("unsupported content type %q", ct)
}

// grant runs a token request under s.mu.
func (s *Server) grant(p url.Values, now time.Time) (int, oauthAnswer) {
	if p.Get("client_id") != s.opts.AppID || p.Get("client_secret") != s.opts.AppSecret {
		return oauthError(http.StatusUnauthorized, 20002, "invalid_client", "client_id or client_secret is invalid")
	}
	var scope string
	switch p.Get("grant_type") {
	case "refresh_token":
		rt, ok := s.auth.refresh[p.Get("refresh_token")]
		switch {
		case !ok:
			return oauthError(http.StatusBadRequest, 20026, "invalid_grant", "refresh token is invalid")
		case rt.state == tokenUsed:
			return oauthError(http.StatusBadRequest, 20073, "invalid_grant", "refresh token has already been used")
		case rt.state == tokenRevoked:
			return oauthError(http.StatusBadRequest, 20064, "invalid_grant", "refresh token has been revoked")
		case !now.Before(rt.expires):
			return oauthError(http.StatusBadRequest, 20037, "invalid_grant", "refresh token has expired")
		}
		rt.state = tokenUsed
		scope = rt.scope
	case "authorization_code":
		c, ok := s.auth.codes[p.Get("code")]
		switch {
		case !ok:
			return oauthError(http.StatusBadRequest, 20003, "invalid_grant", "authorization code not found")
		case c.used:
			return oauthError(http.StatusBadRequest, 20065, "invalid_grant", "authorization code has already been used")
		case !now.Before(c.expires):
			return oauthError(http.StatusBadRequest, 20004, "invalid_grant", "authorization code has expired")
		case c.redirectURI != "" && p.Get("redirect_uri") != c.redirectURI:
			return oauthError(http.StatusBadRequest, 20071, "invalid_grant", "redirect_uri does not match the authorization request")
		}
		c.used = true
		scope = c.scope
	default:
		return oauthError(http.StatusBadRequest, 20001, "unsupported_grant_type", "grant_type must be refresh_token or authorization_code")
	}
	ans := oauthAnswer{
		AccessToken: s.issueAccess(now, scope),
		ExpiresIn:   int64(s.opts.TokenTTL / time.Second),
		TokenType:   "Bearer",
		Scope:       scope,
	}
	// Like the real service, a refresh token comes back only when the
	// person granted offline_access.
	if hasScope(scope, "offline_access") {
		ans.RefreshToken = s.issueRefresh(now, scope)
		ans.RefreshTokenExpiresIn = int64(s.opts.RefreshTokenTTL / time.Second)
	}
	return http.StatusOK, ans
}

func hasScope(scopes, want string) bool {
	for _, s := range strings.Fields(scopes) {
		if s == want {
			return true
		}
	}
	return false
}

// serveAuthorize plays the consent page with a person who always agrees:
// it redirects to redirect_uri with a fresh code and the caller's state.
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if q.Get("client_id") != s.opts.AppID || err != nil || redirect.Scheme == "" || redirect.Host == "" {
		s.record(r, "", 0, http.StatusBadRequest, 20002)
		http.Error(w, "invalid client_id or redirect_uri", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	code := s.issueCode(time.Now(), q.Get("redirect_uri"), q.Get("scope"))
	s.mu.Unlock()
	back := redirect.Query()
	back.Set("code", code)
	if st := q.Get("state"); st != "" {
		back.Set("state", st)
	}
	redirect.RawQuery = back.Encode()
	s.record(r, "", 0, http.StatusFound, 0)
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}
