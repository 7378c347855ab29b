package app

import (
	"crypto/sha256"
	"strings"

	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/targets/apicall"
)

// newQuotas gives every used target the quota of its credential: the API
// counts requests per app or API key, so targets configured with the same
// credential share one Limiter (its rate limit and any throttling pause),
// paced at the lowest rate any of them names. Targets with a credential of
// their own get nil, and make their own Limiter.
func newQuotas(cfg *config.Config, used map[string]bool) map[string]*apicall.Limiter {
	sharers := map[[sha256.Size]byte][]*config.Target{}
	for name := range used {
		if t := cfg.Targets[name]; t != nil {
			if id, ok := credentialID(t); ok {
				sharers[id] = append(sharers[id], t)
			}
		}
	}
	quotas := map[string]*apicall.Limiter{}
	for _, ts := range sharers {
		if len(ts) < 2 {
			continue
		}
		rate := requestsPerSecond(ts[0])
		for _, t := range ts[1:] {
			rate = min(rate, requestsPerSecond(t))
		}
		l := apicall.NewLimiter(rate)
		for _, t := range ts {
			quotas[t.Name] = l
		}
	}
	return quotas
}

// credentialID identifies the credential a target's requests count
// against: the target type, the API's base URL, and the Feishu app (or
// fixed user token) or the GPTBots API key. Hashed, so that the secret is
// not kept around as a map key.
func credentialID(t *config.Target) ([sha256.Size]byte, bool) {
	var parts []string
	switch {
	case t.Feishu != nil && t.Feishu.UsesOAuth():
		parts = []string{"feishu", t.Feishu.BaseURL, "app", t.Feishu.OAuth.AppID}
	case t.Feishu != nil:
		parts = []string{"feishu", t.Feishu.BaseURL, "token", t.Feishu.UserAccessToken}
	case t.GPTBots != nil:
		parts = []string{"gptbots", t.GPTBots.BaseURL, "key", t.GPTBots.APIKey}
	default:
		return [sha256.Size]byte{}, false
	}
	parts[1] = strings.TrimRight(parts[1], "/")
	return sha256.Sum256([]byte(strings.Join(parts, "\x00"))), true
}

func requestsPerSecond(t *config.Target) float64 {
	if t.Feishu != nil {
		return t.Feishu.RequestsPerSecond
	}
	return t.GPTBots.RequestsPerSecond
}
