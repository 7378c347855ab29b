package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/state"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// TestFeishuUnholdableValueDoesNotFreezeRow: the Feishu column is bigint
// where the source column is text. A row whose text is not a number lands
// without it (the dead letter names the column), and so does every later
// update of the row, although pgoutput sends the value again each time;
// once the value becomes a number it lands too.
func TestFeishuUnholdableValueDoesNotFreezeRow(t *testing.T) {
	ctx := context.Background()
	src := newDatabase(t)
	db := src.db
	_, err := db.Exec(ctx, `INSERT INTO items (id, name, qty) VALUES (1, '12', 1), (2, 'n/a', 1)`)
	require.NoError(t, err)
	fake := feishufake.New(feishufake.Options{})
	t.Cleanup(fake.Close)
	cols := slices.Clone(itemsColumns)
	cols[slices.IndexFunc(cols, func(c feishufake.Column) bool { return c.Name == "name" })].DataType = "bigint"
	require.NoError(t, fake.AddTable("items", cols))

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

	waitRow := func(id, col, want string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			for _, r := range fake.Rows("items") {
				if fmt.Sprint(r["id"]) == id && fmt.Sprint(r[col]) == want {
					return
				}
			}
			require.NoError(t, d.exited(), "the daemon stopped")
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("row %s: %s never became %s; rows: %v", id, col, want, fake.Rows("items"))
	}
	waitRow("1", "name", "12")
	waitRow("2", "qty", "1")
	waitStreaming(t, src, d, time.Minute)
	_, err = db.Exec(ctx, `UPDATE items SET qty = 2 WHERE id = 2`)
	require.NoError(t, err)
	waitRow("2", "qty", "2")
	_, err = db.Exec(ctx, `UPDATE items SET name = '7', qty = 3 WHERE id = 2`)
	require.NoError(t, err)
	waitRow("2", "name", "7")
	waitRow("2", "qty", "3")
	require.NoError(t, d.stop(20*time.Second))

	data, err := os.ReadFile(filepath.Join(stateDir, state.DeadLetterFile))
	require.NoError(t, err)
	var letters int
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var l state.DeadLetter
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		require.Equal(t, "name", l.Column, "only the value was refused: %s", sc.Text())
		require.JSONEq(t, `"n/a"`, string(l.Value))
		require.JSONEq(t, `2`, string(l.Key["id"]))
		letters++
	}
	require.Equal(t, 2, letters, "one for the snapshot row, one for the update that carried the value again")
}
