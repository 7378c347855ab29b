package feishufake

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

type tokenState int

const (
	tokenLive tokenState = iota
	tokenUsed
	tokenRevoked
)

type accessToken struct {
	expires time.Time
	scope   string
}

// WriteScope is the scope record writes need.
const WriteScope = "app_engine:workspace.table.record:write"

type refreshToken struct {
	expires time.Time
	state   tokenState
	scope   string
}

type authCode struct {
	expires     time.Time
	used        bool
	scope       string
	redirectURI string
}

type authState struct {
	seq     int
	access  map[string]*accessToken
	refresh map[string]*refreshToken
	codes   map[string]*authCode
}

func newAuthState() authState {
	return authState{
		access:  make(map[string]*accessToken),
		refresh: make(map[string]*refreshToken),
		codes:   make(map[string]*authCode),
	}
}

func (a *authState) next(prefix string) string {
	a.seq++
	return fmt.Sprintf("%s%06d", prefix, a.seq)
}

// check validates an Authorization header, and for writes the token's scope,
// returning a non-zero code on failure.
func (a *authState) check(header string, write bool, now time.Time) (status, code int, msg string) {
	tok, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || tok == "" {
		return http.StatusUnauthorized, 99991661, "Missing access token for authorization. Please make a request with token attached."
	}
	at, ok := a.access[tok]
	if !ok {
		return http.StatusUnauthorized, 99991668, "Invalid access token for authorization. Please make a request with token attached."
	}
	if !now.Before(at.expires) {
		return http.StatusUnauthorized, 99991677, "user access token expired"
	}
	if write && !hasScope(at.scope, WriteScope) {
		return http.StatusBadRequest, 99991679, "Unauthorized. The user has not granted the scope " + WriteScope + " to the app."
	}
	return 0, 0, ""
}

// AccessToken issues a fresh user access token with WriteScope that lives
// Options.TokenTTL.
func (s *Server) AccessToken() string {
	return s.AccessTokenWithScope(WriteScope)
}

// AccessTokenWithScope issues a fresh user access token carrying the given
// space-separated scopes.
func (s *Server) AccessTokenWithScope(scope string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueAccess(time.Now(), scope)
}

func (s *Server) issueAccess(now time.Time, scope string) string {
	tok := s.auth.next("u-fake-")
	s.auth.access[tok] = &accessToken{expires: now.Add(s.opts.TokenTTL), scope: scope}
	return tok
}

// RefreshToken issues a fresh refresh token for the app with WriteScope and
// offline_access, as an earlier authorization would have.
func (s *Server) RefreshToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueRefresh(time.Now(), WriteScope+" offline_access")
}

func (s *Server) issueRefresh(now time.Time, scope string) string {
	tok := s.auth.next("ur-fake-")
	s.auth.refresh[tok] = &refreshToken{expires: now.Add(s.opts.RefreshTokenTTL), scope: scope}
	return tok
}

// issueCode issues a code as the authorize page does after a person
// consented, valid 5 minutes for the given redirect URI and scope.
func (s *Server) issueCode(now time.Time, redirectURI, scope string) string {
	code := s.auth.next("code-fake-")
	s.auth.codes[code] = &authCode{expires: now.Add(5 * time.Minute), scope: scope, redirectURI: redirectURI}
	return code
}

// ExpireTokens makes every access token issued so far expired.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := time.Now().Add(-time.Second)
	for _, at := range s.auth.access {
		at.expires = past
	}
}

// RevokeTokens revokes every token issued so far, as when the person
// withdraws the authorization: access tokens become invalid and refresh
// tokens answer 20064.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.auth.access)
	for _, rt := range s.auth.refresh {
		rt.state = tokenRevoked
	}
}

// RefreshTokenLive reports whether tok is a refresh token the server would
// still accept.
func (s *Server) RefreshTokenLive(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.auth.refresh[tok]
	return ok && rt.state == tokenLive && time.Now().Before(rt.expires)
}
