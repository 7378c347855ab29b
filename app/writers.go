package app

import (
	"fmt"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/metrics"
	"github.com/replicator-cdc/replicator/state"
	"github.com/replicator-cdc/replicator/targets/feishu"
	"github.com/replicator-cdc/replicator/targets/gptbots"
)

// buildWriters creates one writer per configured target that a mapping
// uses; deps.Writers replaces any of them.
func buildWriters(cfg *config.Config, deps Deps, m *metrics.Target, stateDir string, docs state.Docs) (map[string]replicator.Writer, error) {
	used := map[string]bool{}
	for _, mp := range cfg.Mappings {
		used[mp.Target] = true
	}
	writers := make(map[string]replicator.Writer, len(used))
	for name := range used {
		if deps.DryRun != nil {
			writers[name] = &dryRunWriter{target: name, out: deps.DryRun}
			continue
		}
		if w, ok := deps.Writers[name]; ok {
			writers[name] = w
			continue
		}
		t := cfg.Targets[name]
		w, err := newWriter(t, deps, m, stateDir, docs)
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", name, err)
		}
		writers[name] = w
	}
	return writers, nil
}

func newWriter(t *config.Target, deps Deps, m *metrics.Target, stateDir string, docs state.Docs) (replicator.Writer, error) {
	var health func(table string, err error)
	if deps.Monitor != nil {
		health = func(table string, err error) { deps.Monitor.TargetTable(t.Name, table, err) }
	}
	switch t.Type {
	case config.TypeFeishu:
		c := FeishuConfig(t, stateDir)
		c.Tokens = docs
		return feishu.New(c, feishu.Deps{Logger: deps.Logger, Metrics: m, TableHealth: health})
	case config.TypeGPTBots:
		return gptbots.New(gptbots.Config{
			Name: t.Name, BaseURL: t.BaseURL, APIKey: t.APIKey, RequestsPerSecond: t.RequestsPerSecond,
			RequestTimeout: t.RequestTimeout, Timezone: t.Timezone,
		}, gptbots.Deps{Logger: deps.Logger, Metrics: m, TableHealth: health})
	}
	return nil, fmt.Errorf("unknown target type %q", t.Type)
}

// FeishuConfig is the writer configuration of a feishu target.
func FeishuConfig(t *config.Target, stateDir string) feishu.Config {
	c := feishu.Config{
		Name: t.Name, BaseURL: t.BaseURL, AuthorizeURL: t.AuthorizeURL, WorkspaceID: t.WorkspaceID,
		UserAccessToken: t.UserAccessToken, RequestsPerSecond: t.RequestsPerSecond, RequestTimeout: t.RequestTimeout,
		MaxFilterLength: t.MaxFilterLength, StateDir: stateDir,
	}
	if t.OAuth != nil {
		c.OAuth = feishu.OAuth{AppID: t.OAuth.AppID, AppSecret: t.OAuth.AppSecret, RefreshToken: t.OAuth.RefreshToken}
	}
	return c
}
