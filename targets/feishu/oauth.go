package feishu

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/replicator-cdc/replicator/metrics"
	"github.com/replicator-cdc/replicator/targets/backoff"
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
	cfg  *Config
	http *http.Client
	log  *slog.Logger
	m    *metrics.Target
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
	retries := 0
	for attempt := 1; ; attempt++ {
		start := time.Now()
		ans, status, header, err := c.post(ctx, body)
		c.m.Latency.WithLabelValues(c.cfg.Name, "token").Observe(time.Since(start).Seconds())
		if ctx.Err() != nil {
			return tokenFile{}, ctx.Err()
		}
		if err == nil && status == http.StatusOK && ans.Code == 0 && ans.AccessToken != "" {
			c.m.Requests.WithLabelValues(c.cfg.Name, "", "token", "ok").Inc()
			return c.tokens(ans, start)
		}
		failure := err
		if failure == nil {
			failure = fmt.Errorf("code %d %s: %s (HTTP %d)", ans.Code, ans.Error, ans.ErrorDescription, status)
		}
		transient := err != nil || status >= 500 || status == http.StatusTooManyRequests || ans.Code == codeOAuthServer
		if !transient {
			c.m.Requests.WithLabelValues(c.cfg.Name, "", "token", "fatal").Inc()
			c.m.Errors.WithLabelValues(c.cfg.Name, "token_refresh").Inc()
			return tokenFile{}, c.refused(grant["grant_type"], ans.Code, failure)
		}
		c.m.Requests.WithLabelValues(c.cfg.Name, "", "token", "retry").Inc()
		c.m.Errors.WithLabelValues(c.cfg.Name, reason(classRetry, err)).Inc()
		if c.cfg.MaxRetries > 0 && attempt > c.cfg.MaxRetries {
			return tokenFile{}, fmt.Errorf("feishu target %q: token endpoint: giving up after %d attempts: %w", c.cfg.Name, attempt, failure)
		}
		retries++
		wait := backoff.Delay(c.cfg.RetryMin, c.cfg.RetryMax, retries)
		if status == http.StatusTooManyRequests {
			wait = resetAfter(header)
		}
		c.log.Warn("feishu token request failed; retrying", "attempt", attempt, "error", failure.Error(), "wait", wait)
		if err := backoff.Sleep(ctx, wait); err != nil {
			return tokenFile{}, err
		}
	}
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

// post makes one attempt under the request timeout.
func (c *tokenClient) post(ctx context.Context, body []byte) (tokenAnswer, int, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.BaseURL+tokenEndpoint, bytes.NewReader(body))
	if err != nil {
		return tokenAnswer{}, 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := c.http.Do(req)
	if err != nil {
		return tokenAnswer{}, 0, nil, bareError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return tokenAnswer{}, 0, nil, bareError(err)
	}
	var ans tokenAnswer
	if err := json.Unmarshal(b, &ans); err != nil {
		ans = tokenAnswer{Code: noCode, ErrorDescription: snippet(b)}
	}
	return ans, resp.StatusCode, resp.Header, nil
}
