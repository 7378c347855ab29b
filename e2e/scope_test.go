package e2e

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// TestFeishuTableFailureWindow: while the daemon streams, the API answers
// 400/2320001 for the table (first naming it as not found, then as a bare
// "param is invalid", schema reads included) for a stretch of calls, as
// when a table is renamed back and forth or a gateway misbehaves. No
// change may be dead-lettered: the writes wait, and once the table answers
// again the mirror equals the source.
func TestFeishuTableFailureWindow(t *testing.T) {
	ctx := context.Background()
	src := newDatabase(t)
	db := src.db
	seedRows(t, db, 300)
	fake := newFake(t, feishufake.Options{})
	stateDir := t.TempDir()
	token := fake.AccessToken()
	cfg, err := config.Parse("e2e.yaml", []byte(configYAML(src, stateDir, fake.URL(), tokenVar, 100, 10*time.Second)), func(name string) (string, bool) {
		return token, name == tokenVar
	})
	require.NoError(t, err)
	logs := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log (end):\n%s", tail(logs.String(), 64<<10))
		}
	})
	d := startRun(t, cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	waitStreaming(t, src, d, time.Minute)
	w := newWorkload(db, 7, 301)
	require.NoError(t, w.run(ctx, 50, 10*time.Millisecond))

	fake.FailTable("items", 15, `param is invalid: table "items" not found`)
	require.NoError(t, w.run(ctx, 100, 20*time.Millisecond))
	waitMirror(t, db, fake, mirrorTimeout, d.exited)
	// Fewer calls: isolating a bare refusal spends them on requests that
	// do not wait, and then each probe waits longer than the last.
	fake.FailTable("items", 8, "")
	require.NoError(t, w.run(ctx, 100, 20*time.Millisecond))
	waitMirror(t, db, fake, mirrorTimeout, d.exited)
	require.NoError(t, d.stop(20*time.Second))

	requireNoDeadLetters(t, stateDir)
	failing := 0
	for _, r := range fake.Requests() {
		if r.Code == 2320001 {
			failing++
		}
	}
	assert.Equal(t, 23, failing, "every injected failure was answered")
	// The first window names the table; the bare one may be used up by the
	// isolation's own requests before a probe would see it.
	assert.Contains(t, logs.String(), "failing as a whole")
	assert.Contains(t, logs.String(), "target table recovered")
}
