package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// TestFeishuUnholdableValueDoesNotFreezeRow: the Feishu column is bigint
// where the source column is text. A row whose text is not a number lands
// without it (the dead letter names the column), and so does every later
// update of the row, although pgoutput sends the value again each time;
// once the value becomes a number it lands too.
func TestFeishuUnholdableValueDoesNotFreezeRow(t *testing.T) {
	ctx := context.Background()
	src := newDatabase(t, feishuTarget().zone)
	db := src.db
	_, err := db.Exec(ctx, `INSERT INTO items (id, name, qty) VALUES (1, '12', 1), (2, 'n/a', 1)`)
	require.NoError(t, err)
	cols := slices.Clone(itemsColumns)
	cols[slices.IndexFunc(cols, func(c feishufake.Column) bool { return c.Name == "name" })].DataType = "bigint"
	fake := newFeishuFake(t, feishufake.Options{}, cols)
	cfg, stateDir := daemonConfig(t, src, fake, 100, 10*time.Second)
	logger, _ := daemonLogger(t)
	d := startRun(t, cfg, logger)

	waitRow := func(id, col, want string) {
		t.Helper()
		testkit.Eventually(t, time.Minute, fmt.Sprintf("row %s: %s to become %s", id, col, want), func() bool {
			require.NoError(t, d.exited(), "the daemon stopped")
			return slices.ContainsFunc(fake.Rows("items"), func(r map[string]any) bool {
				return fmt.Sprint(r["id"]) == id && fmt.Sprint(r[col]) == want
			})
		})
	}
	waitRow("1", "name", "12")
	waitRow("2", "qty", "1")
	waitStreaming(t, src, d.exited, time.Minute)
	_, err = db.Exec(ctx, `UPDATE items SET qty = 2 WHERE id = 2`)
	require.NoError(t, err)
	waitRow("2", "qty", "2")
	_, err = db.Exec(ctx, `UPDATE items SET name = '7', qty = 3 WHERE id = 2`)
	require.NoError(t, err)
	waitRow("2", "name", "7")
	waitRow("2", "qty", "3")
	require.NoError(t, d.stop(20*time.Second))

	letters := deadLetters(t, stateDir)
	for _, l := range letters {
		require.Equal(t, "name", l.Column, "only the value was refused: %+v", l)
		require.JSONEq(t, `"n/a"`, string(l.Value))
		require.JSONEq(t, `2`, string(l.Key["id"]))
	}
	require.Len(t, letters, 2, "one for the snapshot row, one for the update that carried the value again")
}
