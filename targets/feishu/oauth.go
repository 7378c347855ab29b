package feishu

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/replicator-cdc/replicator/metrics"
	"github.com/replicator-cdc/replicator/targets/apicall"
)

const tokenEndpoint = "/open-apis/authen/v2/oauth/token"

// Token endpoint codes.
const (
	codeRefreshInvalid  = 20026
	codeRefreshExpired  = 20037
	codeRefreshRevoked  = 20064
	codeRefreshUsed     = 20073
	codeOAuthServer     = 20050
	codeInvalidClient   = 20002
	codeNoRefreshIssued = -2
)

// tokenClient calls the OAuth token endpoint.
type tokenClient struct {
	cfg *Config
	api *apicall.Client
	log *slog.Logger
	m   *metrics.Target
}

// newTokenClient calls the token endpoint with its own limiter: it is
// another API than the tables', with its own quota, and a refresh must not
// wait behind a table's throttling pause.
func newTokenClient(cfg *Config, hc *http.Client, log *slog.Logger, m *metrics.Target) *tokenClient {
	return &tokenClient{cfg: cfg, log: log, m: m, api: apicall.New(apicall.Config{
		Name: cfg.Name, What: fmt.Sprintf("feishu target %q: token endpoint", cfg.Name), HTTP: hc,
		Limiter: apicall.NewLimiter(0), Metrics: m, Log: log,
		Timeout: cfg.RequestTimeout, RetryMin: cfg.RetryMin, RetryMax: cfg.RetryMax, ProbeMax: cfg.ProbeMax,
		MaxRetries: cfg.MaxRetries, MaxAnswerBytes: 1 << 20,
	})}
}

// tokenAnswer follows RFC 6749 (fields at the top level) plus Feishu's code.
type tokenAnswer struct {
	Code                  int    `json:"code"`
	Error                 string `json:"error"`
	ErrorDescription      string `json:"error_description"`
	AccessToken           string `json:"access_token"`
	ExpiresIn             int64  `json:"expires_in"`
	RefreshToken          string `json:"refresh_token"`
	RefreshTokenExpiresIn int64  `json:"refresh_token_expires_in"`
}

// exchange sends a grant (refresh_token or authorization_code) with the app
// credentials, retrying transient failures, and returns the new tokens.
func (c *tokenClient) exchange(ctx context.Context, grant map[string]string) (tokenFile, error) {
	grant["client_id"] = c.cfg.OAuth.AppID
	grant["client_secret"] = c.cfg.OAuth.AppSecret
	body, err := json.Marshal(grant)
	if err != nil {
		return tokenFile{}, err
	}
	var ans tokenAnswer
	var issued time.Time
	v, err := c.api.Do(ctx, apicall.Request{
		Op: "token", Method: http.MethodPost, URL: c.cfg.BaseURL + tokenEndpoint, Body: body,
		Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}},
	}, func(a *apicall.Answer) apicall.Verdict {
		ans, issued = decodeTokenAnswer(a.Body), a.Sent
		return classifyToken(a.Status, a.Header, ans)
	})
	switch {
	case err != nil:
		return tokenFile{}, err
	case v.Action == apicall.Done:
		return c.tokens(ans, issued)
	}
	return tokenFile{}, c.refused(grant["grant_type"], ans.Code, v.Failure)
}

func decodeTokenAnswer(b []byte) tokenAnswer {
	var ans tokenAnswer
	if err := json.Unmarshal(b, &ans); err != nil {
		ans = tokenAnswer{Code: noCode, ErrorDescription: snippet(b)}
	}
	return ans
}

// classifyToken decides about a token endpoint answer: anything but a
// server failure or throttling is a refusal a person must fix.
func classifyToken(status int, h http.Header, ans tokenAnswer) apicall.Verdict {
	failure := fmt.Errorf("code %d %s: %s (HTTP %d)", ans.Code, ans.Error, ans.ErrorDescription, status)
	switch {
	case status == http.StatusOK && ans.Code == 0 && ans.AccessToken != "":
		return apicall.Verdict{Action: apicall.Done}
	case status == http.StatusTooManyRequests:
		return apicall.Verdict{Action: apicall.Throttle, Reason: apicall.ReasonThrottled, Failure: failure,
			Reset: apicall.Seconds(h.Get("x-ogw-ratelimit-reset"))}
	case status >= 500 || ans.Code == codeOAuthServer:
		return apicall.Verdict{Action: apicall.Retry, Reason: apicall.ReasonServer, Failure: failure}
	}
	return apicall.Verdict{Action: apicall.Fatal, Reason: apicall.ReasonTokenRefresh, Failure: failure}
}

func (c *tokenClient) tokens(ans tokenAnswer, issued time.Time) (tokenFile, error) {
	if ans.RefreshToken == "" {
		return tokenFile{}, c.refused("", codeNoRefreshIssued, fmt.Errorf("no refresh_token came back"))
	}
	t := tokenFile{
		AppID:                c.cfg.OAuth.AppID,
		AccessToken:          ans.AccessToken,
		AccessTokenExpiresAt: issued.Add(time.Duration(ans.ExpiresIn) * time.Second).UTC(),
		AccessTokenIssuedAt:  issued.UTC(),
		RefreshToken:         ans.RefreshToken,
	}
	if ans.RefreshTokenExpiresIn > 0 {
		t.RefreshTokenExpiresAt = issued.Add(time.Duration(ans.RefreshTokenExpiresIn) * time.Second).UTC()
	}
	return t, nil
}

// refused explains a token endpoint failure that retrying cannot fix.
func (c *tokenClient) refused(grantType string, code int, failure error) error {
	login := fmt.Sprintf("`replicator feishu-login --config FILE --target %s`", c.cfg.Name)
	var hint string
	switch code {
	case codeRefreshInvalid, codeRefreshExpired, codeRefreshRevoked:
		hint = "the refresh token is no longer valid: authorize again with " + login
	case codeRefreshUsed:
		hint = "the refresh token was already used (an earlier refresh answer was probably lost, so the newer token never arrived): authorize again with " + login
	case codeInvalidClient, codeWrongAppCreds:
		hint = "the app credentials are wrong: check oauth app_id and app_secret"
	case codeNoRefreshIssued:
		hint = "the app must have the offline_access scope (enable it in the developer console and authorize again with " + login + ")"
	default:
		hint = "authorize again with " + login
	}
	if grantType == "authorization_code" && code != codeNoRefreshIssued && code != codeInvalidClient {
		hint = "the authorization code was refused: run the login again"
	}
	return fmt.Errorf("feishu target %q: token request refused: %w: %s", c.cfg.Name, failure, hint)
}
