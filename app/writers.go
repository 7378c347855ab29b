package app

import (
	"fmt"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/metrics"
	"github.com/replicator-cdc/replicator/state"
	"github.com/replicator-cdc/replicator/targets/apicall"
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
	quotas := newQuotas(cfg, used)
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
		w, err := newWriter(t, deps, m, stateDir, docs, quotas[name])
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", name, err)
		}
		writers[name] = w
	}
	return writers, nil
}

func newWriter(t *config.Target, deps Deps, m *metrics.Target, stateDir string, docs state.Docs, quota *apicall.Limiter) (replicator.Writer, error) {
	var health func(table string, err error)
	if deps.Monitor != nil {
		health = func(table string, err error) { deps.Monitor.TargetTable(t.Name, table, err) }
	}
	switch {
	case t.Feishu != nil:
		c := *t.Feishu
		c.StateDir, c.Tokens = stateDir, docs
		return feishu.New(c, feishu.Deps{Logger: deps.Logger, Metrics: m, TableHealth: health, Limiter: quota, HTTPClient: targetHTTP(c.MaxConcurrentRequests)})
	case t.GPTBots != nil:
		return gptbots.New(*t.GPTBots, gptbots.Deps{Logger: deps.Logger, Metrics: m, TableHealth: health, Limiter: quota, HTTPClient: targetHTTP(t.GPTBots.MaxConcurrentRequests)})
	}
	return nil, fmt.Errorf("unknown target type %q", t.Type)
}
