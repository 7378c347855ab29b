package app_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/targets/memory"
)

// A second instance started with a state directory of its own, while the
// first streams, used to copy every table again over the first one's newer
// writes. It must refuse before it writes anything.
func TestSecondInstanceRefusedWhileSlotInUse(t *testing.T) {
	e := newEnv(t, itemsSchema)
	e.exec(`INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b')`)
	first := e.startStreaming(e.config(itemsMapping))

	cfg := e.config(itemsMapping)
	cfg.State.Dir = t.TempDir()
	second := memory.New()
	logs := &testkit.LockedBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := app.Run(ctx, cfg, app.Deps{Logger: slog.New(slog.NewTextHandler(logs, nil)), Writers: map[string]replicator.Writer{"mem": second}})
	require.Zero(t, second.Len("items"), "the second instance copied rows")
	require.ErrorContains(t, err, "held by another connection")
	require.Contains(t, logs.String(), "waiting for it to be released")

	// The first instance is undisturbed.
	e.exec(`UPDATE items SET name = 'a2' WHERE id = 1`)
	e.waitMirror("items", "items", 30*time.Second, "id")
	require.NoError(t, first.stop())
}
