package feishufake

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func tokenCall(t *testing.T, s *Server, form bool, params map[string]string) (int, oauthAnswer, error) {
	t.Helper()
	var req *http.Request
	if form {
		v := url.Values{}
		for k, x := range params {
			v.Set(k, x)
		}
		req, _ = http.NewRequest(http.MethodPost, s.URL()+tokenPath, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		b, _ := json.Marshal(params)
		req, _ = http.NewRequest(http.MethodPost, s.URL()+tokenPath, strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return 0, oauthAnswer{}, err
	}
	defer resp.Body.Close()
	var a oauthAnswer
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	return resp.StatusCode, a, nil
}

func refresh(t *testing.T, s *Server, form bool, rt string) (int, oauthAnswer, error) {
	o := s.Options()
	return tokenCall(t, s, form, map[string]string{
		"grant_type": "refresh_token", "client_id": o.AppID, "client_secret": o.AppSecret, "refresh_token": rt,
	})
}

func TestTokenRotation(t *testing.T) {
	s := New(Options{TokenTTL: time.Hour})
	defer s.Close()
	rt := s.RefreshToken()
	status, a, err := refresh(t, s, false, rt)
	require.NoError(t, err)
	require.Equal(t, 200, status)
	assert.Equal(t, 0, a.Code)
	assert.NotEmpty(t, a.AccessToken)
	assert.Equal(t, int64(3600), a.ExpiresIn)
	assert.NotEqual(t, rt, a.RefreshToken)
	assert.Positive(t, a.RefreshTokenExpiresIn)
	assert.False(t, s.RefreshTokenLive(rt))
	assert.True(t, s.RefreshTokenLive(a.RefreshToken))

	_, again, err := refresh(t, s, true, rt)
	require.NoError(t, err)
	assert.Equal(t, 20073, again.Code, "a refresh token is single-use")

	_, a2, err := refresh(t, s, true, a.RefreshToken)
	require.NoError(t, err)
	assert.Equal(t, 0, a2.Code, "form encoding works too")

	_, unknown, err := refresh(t, s, false, "ur-forged")
	require.NoError(t, err)
	assert.Equal(t, 20026, unknown.Code)

	status, wrong, err := tokenCall(t, s, false, map[string]string{
		"grant_type": "refresh_token", "client_id": "cli_fake", "client_secret": "nope", "refresh_token": a2.RefreshToken,
	})
	require.NoError(t, err)
	assert.Equal(t, []int{401, 20002}, []int{status, wrong.Code})
	assert.True(t, s.RefreshTokenLive(a2.RefreshToken), "a rejected call does not spend the token")

	s.RevokeTokens()
	_, revoked, err := refresh(t, s, false, a2.RefreshToken)
	require.NoError(t, err)
	assert.Equal(t, 20064, revoked.Code)
}

func TestRefreshAnswerLost(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	rt := s.RefreshToken()
	s.InjectTokenFaults(FaultLostAnswer, FaultServerError)
	_, _, err := refresh(t, s, false, rt)
	require.Error(t, err)
	assert.False(t, s.RefreshTokenLive(rt), "rotated although the answer was lost")
	status, a, err := refresh(t, s, false, rt)
	require.NoError(t, err)
	assert.Equal(t, []int{500, 20050}, []int{status, a.Code})
	_, a, err = refresh(t, s, false, rt)
	require.NoError(t, err)
	assert.Equal(t, 20073, a.Code)
}

func TestAuthorizationCode(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// authorize consents on the authorize page and returns where it sends
	// the browser back to.
	authorize := func(scope string) url.Values {
		q := url.Values{"client_id": {"cli_fake"}, "redirect_uri": {"http://127.0.0.1:1/callback"}, "scope": {scope}, "state": {"st"}}
		resp, err := noRedirect.Get(s.URL() + authorizePath + "?" + q.Encode())
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusFound, resp.StatusCode)
		loc, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		return loc.Query()
	}
	back := authorize(WriteScope + " offline_access")
	assert.Equal(t, "st", back.Get("state"))
	code := back.Get("code")
	exchange := func(code, redirect string) oauthAnswer {
		_, a, err := tokenCall(t, s, false, map[string]string{
			"grant_type": "authorization_code", "client_id": "cli_fake", "client_secret": "secret_fake", "code": code, "redirect_uri": redirect,
		})
		require.NoError(t, err)
		return a
	}
	assert.Equal(t, 20071, exchange(code, "http://127.0.0.1:2/callback").Code)
	a := exchange(code, "http://127.0.0.1:1/callback")
	require.Equal(t, 0, a.Code)
	assert.NotEmpty(t, a.RefreshToken)
	assert.Equal(t, 20065, exchange(code, "http://127.0.0.1:1/callback").Code)
	assert.Equal(t, 20003, exchange("nope", "").Code)

	noOffline := authorize(WriteScope).Get("code")
	a = exchange(noOffline, "http://127.0.0.1:1/callback")
	require.Equal(t, 0, a.Code)
	assert.Empty(t, a.RefreshToken, "no refresh token without offline_access")
}
