package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// With the state in the source database, every rotated Feishu token is
// committed there (seen from another session) before the first request
// that uses it leaves: a standby that takes over at any moment finds the
// refresh token that is still live, never one its predecessor spent.
func TestRotatedTokenCommittedBeforeUse(t *testing.T) {
	e := newEnv(t, `CREATE TABLE items (id bigint PRIMARY KEY, name text)`)
	e.exec(`INSERT INTO items SELECT g, 'name ' || g FROM generate_series(1, 20) g`)
	// Tokens live 4 s: a refresh every 2 s.
	fake := feishufake.New(feishufake.Options{RequestsPerSecond: -1, TokenTTL: 4 * time.Second})
	t.Cleanup(fake.Close)
	require.NoError(t, fake.AddTable("items", []feishufake.Column{
		{Name: "id", DataType: "bigint", IsPrimaryKey: true},
		{Name: "name", DataType: "text", AllowNull: true},
	}))

	reader := mustConnect(t, e.dsn)
	var mu sync.Mutex
	checked, mismatches := 0, 0
	upstream, err := url.Parse(fake.URL())
	require.NoError(t, err)
	forward := httputil.NewSingleHostReverseProxy(upstream)
	check := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/apaas/") {
			used := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			mu.Lock()
			var saved string
			err := reader.QueryRow(context.Background(), `SELECT data->>'access_token' FROM replicator.state WHERE name = 'feishu-lark.token.json'`).Scan(&saved)
			checked++
			if err != nil || saved != used {
				mismatches++
			}
			mu.Unlock()
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(check.Close)

	o := fake.Options()
	cfg := e.configWithTargets(fmt.Sprintf(`
  lark:
    type: feishu
    base_url: %s
    workspace_id: %s
    oauth: {app_id: %s, app_secret: %s, refresh_token: %s}
`, check.URL, o.WorkspaceID, o.AppID, o.AppSecret, fake.RefreshToken()), `
  - source: items
    target: lark
    table: items
`)
	cfg.State.Store, cfg.State.Table = config.StorePostgres, "replicator.state"
	d := e.startStreaming(cfg)
	refreshes := func() int {
		n := 0
		for _, r := range fake.Requests() {
			if strings.HasSuffix(r.Path, "/oauth/token") {
				n++
			}
		}
		return n
	}
	for i := 0; refreshes() < 4; i++ {
		require.Less(t, i, 600, "fewer than 4 token refreshes in a minute")
		e.exec(`UPDATE items SET name = $1 WHERE id = $2`, fmt.Sprintf("change %d", i), i%20+1)
		time.Sleep(100 * time.Millisecond)
	}
	testkit.Eventually(t, 60*time.Second, "the mirror", func() bool {
		got := fakeRowsByID(t, fake, "items")
		for id, row := range e.sourceRows("items", "id") {
			if got[id]["name"] != fmt.Sprintf("%q", row["name"]) {
				return false
			}
		}
		return len(got) == 20
	})
	require.NoError(t, d.stop())
	mu.Lock()
	defer mu.Unlock()
	require.Positive(t, checked)
	require.Zero(t, mismatches, "a request used an access token that was not yet committed in the state table")
	t.Logf("%d requests checked across %d refreshes", checked, refreshes())
}
