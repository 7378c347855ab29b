package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/app"
)

// TestDroppedColumnSameRulesAfterRestart drops a mapped column while the
// daemon streams. Copying every column, the daemon goes on without it, and
// after a restart it starts on the same configuration and keeps mirroring
// the other columns. Listing the column, the daemon stops, and after a
// restart it refuses to start with the same message.
func TestDroppedColumnSameRulesAfterRestart(t *testing.T) {
	t.Run("every column", func(t *testing.T) {
		e := newEnv(t, itemsSchema)
		e.exec(`INSERT INTO items (id, name, qty) SELECT g, 'n', g FROM generate_series(1, 20) g`)
		cfg := e.config(itemsMapping)
		daemon := e.startStreaming(cfg)
		e.waitMirror("items", "items", 60*time.Second, "id")
		e.exec(`ALTER TABLE items DROP COLUMN qty`)
		e.exec(`UPDATE items SET name = 'during' WHERE id <= 5`)
		e.waitName("items", "1", "during")
		require.NoError(t, daemon.stop())
		daemon = e.startStreaming(cfg)
		e.exec(`UPDATE items SET name = 'after restart' WHERE id <= 5`)
		e.exec(`INSERT INTO items (id, name) VALUES (100, 'new')`)
		e.waitName("items", "1", "after restart")
		e.waitName("items", "100", "new")
		require.NoError(t, daemon.stop())
	})
	t.Run("listed column", func(t *testing.T) {
		e := newEnv(t, itemsSchema)
		e.exec(`INSERT INTO items (id, name, qty) SELECT g, 'n', g FROM generate_series(1, 20) g`)
		cfg := e.config(`
  - source: public.items
    target: mem
    table: items
    columns: {id: id, name: name, qty: qty}
`)
		daemon := e.startStreaming(cfg)
		e.waitName("items", "20", "n")
		e.exec(`ALTER TABLE items DROP COLUMN qty`)
		e.exec(`UPDATE items SET name = 'during' WHERE id <= 5`)
		var during error
		select {
		case during = <-daemon.done:
			daemon.once.Do(func() { daemon.err = during })
		case <-time.After(60 * time.Second):
			t.Fatal("the daemon went on without a listed column")
		}
		require.Error(t, during)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		atStart := app.Run(ctx, cfg, app.Deps{Logger: quietLogger(), Writers: writers(e)})
		require.Error(t, atStart)
		const same = "mapping public.items: column qty (written to target column qty) is not in the source table: it was renamed or dropped"
		require.Contains(t, during.Error(), same)
		require.Contains(t, atStart.Error(), same)
		require.True(t, strings.Contains(atStart.Error(), "on_missing_column: skip"))
	})
}

// waitName waits until the target row with key has the name.
func (e *env) waitName(table, key, name string) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if row, ok := e.mem.Rows(table)[key]; ok && row["name"] == `"`+name+`"` {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("target row %s of %s never got name %q", key, table, name)
}
