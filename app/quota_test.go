package app

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/metrics"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// TestTargetsSharingACredentialShareItsQuota configures two targets with
// the same Feishu token against one fake enforcing the API's limit, as the
// real API counts per credential. Written concurrently, their requests
// never exceed the limit in any sliding second: with a quota per target
// they would arrive at twice the rate.
func TestTargetsSharingACredentialShareItsQuota(t *testing.T) {
	const rate, perTarget = 2, 4
	fake := feishufake.New(feishufake.Options{RequestsPerSecond: rate, Seed: 9})
	t.Cleanup(fake.Close)
	cols := []feishufake.Column{{Name: "id", DataType: "bigint", IsUnique: true}, {Name: "name", DataType: "text", AllowNull: true}}
	for _, table := range []string{"a", "b"} {
		if err := fake.AddTable(table, cols); err != nil {
			t.Fatal(err)
		}
	}
	target := func(name, baseURL, token string) string {
		return fmt.Sprintf("  %s:\n    type: feishu\n    base_url: %s\n    workspace_id: %s\n    user_access_token: %s\n    requests_per_second: %d\n",
			name, baseURL, fake.Options().WorkspaceID, token, rate)
	}
	token := fake.AccessToken()
	yaml := "source:\n  dsn: postgres://u@127.0.0.1:1/app\ntargets:\n" +
		target("one", fake.URL(), token) +
		// The same credential, the base URL spelled with a trailing slash.
		target("two", fake.URL()+"/", token) +
		target("other", fake.URL(), "another-token") +
		"mappings:\n  - {source: a, target: one, table: a}\n  - {source: b, target: two, table: b}\n  - {source: c, target: other, table: c}\n"
	cfg, err := config.Parse("quota.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	quotas := newQuotas(cfg, map[string]bool{"one": true, "two": true, "other": true})
	if quotas["one"] == nil || quotas["one"] != quotas["two"] {
		t.Fatalf("targets one and two have the same credential but not one quota")
	}
	if quotas["other"] != nil {
		t.Fatalf("target other has a credential of its own but shares a quota")
	}

	cfg.Mappings = cfg.Mappings[:2]
	writers, closeWriters, err := buildWriters(cfg, Deps{}, metrics.NewTarget(prometheus.NewRegistry()), t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeWriters()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := func(table string) replicator.TableSpec {
		return replicator.TableSpec{Source: "public." + table, Table: table, Key: []string{"id"}, Columns: []string{"id", "name"}}
	}
	for name, table := range map[string]string{"one": "a", "two": "b"} {
		if err := writers[name].Prepare(ctx, []replicator.TableSpec{spec(table)}); err != nil {
			t.Fatalf("prepare %s: %v", name, err)
		}
	}
	var g errgroup.Group
	for name, table := range map[string]string{"one": "a", "two": "b"} {
		for i := range perTarget {
			g.Go(func() error {
				id := replicator.Field{Name: "id", Value: replicator.Value{Kind: replicator.KindInt, Raw: strconv.AppendInt(nil, int64(i), 10)}}
				rec := replicator.Record{Op: replicator.OpUpsert, Key: []replicator.Field{id},
					Fields: []replicator.Field{id, {Name: "name", Value: replicator.Value{Kind: replicator.KindText, Raw: []byte(name)}}}}
				rej, err := writers[name].Write(ctx, replicator.Batch{Table: spec(table), Records: []replicator.Record{rec}})
				if err == nil && len(rej) > 0 {
					err = fmt.Errorf("rejected: %s", rej[0].Reason)
				}
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	var calls []feishufake.Request
	for _, r := range fake.Requests() {
		if strings.HasSuffix(r.Path, "/records") {
			calls = append(calls, r)
		}
	}
	if n := feishufake.MaxPerWindow(calls, time.Second); n > rate {
		t.Errorf("%d requests of one credential arrived within one sliding second, limit %d", n, rate)
	}
	for _, table := range []string{"a", "b"} {
		if n := len(fake.Rows(table)); n != perTarget {
			t.Errorf("table %s holds %d rows, want %d", table, n, perTarget)
		}
	}
}
