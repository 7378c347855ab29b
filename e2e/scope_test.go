package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFeishuTableFailureWindow: while the daemon streams, the API answers
// 400/2320001 for the table (first naming it as not found, then as a bare
// "param is invalid", schema reads included) for a stretch of calls, as
// when a table is renamed back and forth or a gateway misbehaves. No
// change may be dead-lettered: the writes wait, and once the table answers
// again the mirror equals the source.
func TestFeishuTableFailureWindow(t *testing.T) {
	ctx := context.Background()
	tg := feishuTarget()
	src, fk, values := begin(t, tg, 300, 0, false)
	lark := fk.(feishuFake)
	db := src.db
	cfg, stateDir := daemonConfig(t, src, fk, 100, 10*time.Second)
	logger, logs := daemonLogger(t)
	d := startRun(t, cfg, logger)
	waitStreaming(t, src, d.exited, time.Minute)
	w := newWorkload(db, values, 7, 301)
	require.NoError(t, w.run(ctx, 50, 10*time.Millisecond))

	lark.FailTable("items", 15, `param is invalid: table "items" not found`)
	require.NoError(t, w.run(ctx, 100, 20*time.Millisecond))
	waitMirror(t, db, tg, fk, mirrorTimeout, d.exited)
	// Fewer calls: isolating a bare refusal spends them on requests that
	// do not wait, and then each probe waits longer than the last.
	lark.FailTable("items", 8, "")
	require.NoError(t, w.run(ctx, 100, 20*time.Millisecond))
	waitMirror(t, db, tg, fk, mirrorTimeout, d.exited)
	require.NoError(t, d.stop(20*time.Second))

	requireNoDeadLetters(t, stateDir)
	failing := 0
	for _, r := range lark.Requests() {
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
