package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/metrics"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// The quotas' stall watchers are goroutines of the writers' quotas, shared
// (two targets with one credential) or a writer's own: closeWriters stops
// them. A write after it starts none, where a quota left open would start
// one that runs on for a while after the write.
func TestCloseWritersStopsTheStallWatchers(t *testing.T) {
	shared := feishufake.New(feishufake.Options{Seed: 3})
	t.Cleanup(shared.Close)
	own := feishufake.New(feishufake.Options{Seed: 4})
	t.Cleanup(own.Close)
	cols := []feishufake.Column{{Name: "id", DataType: "bigint", IsUnique: true}}
	require.NoError(t, shared.AddTable("a", cols))
	require.NoError(t, shared.AddTable("b", cols))
	require.NoError(t, own.AddTable("c", cols))
	target := func(name string, fake *feishufake.Server, token string) string {
		return fmt.Sprintf("  %s:\n    type: feishu\n    base_url: %s\n    workspace_id: %s\n    user_access_token: %s\n",
			name, fake.URL(), fake.Options().WorkspaceID, token)
	}
	token := shared.AccessToken()
	yaml := "source:\n  dsn: postgres://u@127.0.0.1:1/app\ntargets:\n" +
		target("one", shared, token) + target("two", shared, token) + target("solo", own, own.AccessToken()) +
		"mappings:\n  - {source: a, target: one, table: a}\n  - {source: b, target: two, table: b}\n  - {source: c, target: solo, table: c}\n"
	cfg, err := config.Parse("writers.yaml", []byte(yaml), nil)
	require.NoError(t, err)
	writers, closeWriters, err := buildWriters(cfg, Deps{}, metrics.NewTarget(prometheus.NewRegistry()), t.TempDir(), nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tables := map[string]string{"one": "a", "two": "b", "solo": "c"}
	spec := func(table string) replicator.TableSpec {
		return replicator.TableSpec{Source: "public." + table, Table: table, Key: []string{"id"}, Columns: []string{"id"}}
	}
	write := func(name string, id int) {
		t.Helper()
		f := replicator.Field{Name: "id", Value: replicator.Value{Kind: replicator.KindInt, Raw: fmt.Appendf(nil, "%d", id)}}
		rej, err := writers[name].Write(ctx, replicator.Batch{Table: spec(tables[name]),
			Records: []replicator.Record{{Op: replicator.OpUpsert, Key: []replicator.Field{f}, Fields: []replicator.Field{f}}}})
		require.NoError(t, err)
		require.Empty(t, rej)
	}
	for name, table := range tables {
		require.NoError(t, writers[name].Prepare(ctx, []replicator.TableSpec{spec(table)}))
		write(name, 1)
	}
	closeWriters()
	for i := 0; stallWatchers() > 0; i++ {
		require.Less(t, i, 1000, "a stall watcher goroutine is left after closeWriters")
		time.Sleep(time.Millisecond)
	}
	for name := range tables {
		write(name, 2)
		require.Zero(t, stallWatchers(), "a write of target %s after closeWriters started a stall watcher", name)
	}
}

// stallWatchers counts the goroutines running a quota's stall watcher.
func stallWatchers() int { return testkit.Goroutines("apicall.(*Window).watch(") }
