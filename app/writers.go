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
// uses; deps.Writers replaces any of them. closeWriters stops what the
// writers and their shared quotas run in the background (the quotas'
// stall watchers) and waits for it: call it once the writes are over.
// lease fences docs, for the Feishu token refreshes; nil without a lock.
func buildWriters(cfg *config.Config, deps Deps, m *metrics.Target, stateDir string, docs state.Docs, lease feishu.Lease) (writers map[string]replicator.Writer, closeWriters func(), err error) {
	used := map[string]bool{}
	for _, mp := range cfg.Mappings {
		used[mp.Target] = true
	}
	quotas := newQuotas(cfg, used)
	writers = make(map[string]replicator.Writer, len(used))
	var closers []func()
	closeWriters = func() {
		for _, c := range closers {
			c()
		}
	}
	for _, q := range quotas {
		closers = append(closers, q.Close)
	}
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
		w, err := newWriter(t, deps, m, stateDir, docs, lease, quotas[name])
		if err != nil {
			closeWriters()
			return nil, nil, fmt.Errorf("target %s: %w", name, err)
		}
		writers[name] = w
		if c, ok := w.(interface{ Close() }); ok {
			closers = append(closers, c.Close)
		}
	}
	return writers, closeWriters, nil
}

func newWriter(t *config.Target, deps Deps, m *metrics.Target, stateDir string, docs state.Docs, lease feishu.Lease, quota *apicall.Limiter) (replicator.Writer, error) {
	var health func(table string, err error)
	if deps.Monitor != nil {
		health = func(table string, err error) { deps.Monitor.TargetTable(t.Name, table, err) }
	}
	switch {
	case t.Feishu != nil:
		c := *t.Feishu
		c.StateDir, c.Tokens, c.Lease = stateDir, docs, lease
		return feishu.New(c, feishu.Deps{Logger: deps.Logger, Metrics: m, TableHealth: health, Limiter: quota, HTTPClient: targetHTTP(c.MaxConcurrentRequests)})
	case t.GPTBots != nil:
		return gptbots.New(*t.GPTBots, gptbots.Deps{Logger: deps.Logger, Metrics: m, TableHealth: health, Limiter: quota, HTTPClient: targetHTTP(t.GPTBots.MaxConcurrentRequests)})
	}
	return nil, fmt.Errorf("unknown target type %q", t.Type)
}
