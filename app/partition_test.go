package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/internal/pgtest"
)

const partitionedSchema = `
CREATE TABLE items (id bigint PRIMARY KEY, name text, qty integer) PARTITION BY RANGE (id);
CREATE TABLE items_p1 PARTITION OF items FOR VALUES FROM (0) TO (1000);
CREATE TABLE items_p2 PARTITION OF items FOR VALUES FROM (1000) TO (2000);
`

// A partitioned table is copied through its root and its changes, which
// pgoutput reports under the root's name once the publication publishes via
// the root (and under the partitions' names for changes written before),
// reach the target: inserts, updates, deletes and key changes that move rows
// between partitions, and partitions attached and detached while streaming.
func TestPartitionedTableMirrored(t *testing.T) {
	e := newEnv(t, partitionedSchema)
	e.exec(`INSERT INTO items SELECT g, 'n' || g, g FROM generate_series(1, 20) g`)
	e.exec(`INSERT INTO items SELECT g, 'n' || g, g FROM generate_series(1001, 1020) g`)
	cfg := e.config(itemsMapping)

	daemon := e.startStreaming(cfg)
	e.waitMirror("items", "items", 60*time.Second, "id")
	var viaRoot bool
	require.NoError(t, e.db.QueryRow(context.Background(), "SELECT pubviaroot FROM pg_publication WHERE pubname = $1", "pub_"+e.name).Scan(&viaRoot))
	require.True(t, viaRoot, "the daemon's publication must publish through the partition root")

	e.exec(`INSERT INTO items VALUES (21, 'new', 1), (1021, 'new', 2)`)
	e.exec(`UPDATE items SET name = 'upd' WHERE id IN (2, 1002)`)
	e.exec(`DELETE FROM items WHERE id IN (3, 1003)`)
	e.exec(`UPDATE items SET id = 40 WHERE id = 4`)
	e.exec(`UPDATE items SET id = 1500, name = 'moved up' WHERE id = 1`)
	e.exec(`UPDATE items SET id = 500, name = 'moved down' WHERE id = 1001`)
	e.waitMirror("items", "items", 60*time.Second, "id")

	e.exec(`CREATE TABLE items_p3 (id bigint NOT NULL, name text, qty integer)`)
	e.exec(`ALTER TABLE items ATTACH PARTITION items_p3 FOR VALUES FROM (2000) TO (3000)`)
	e.exec(`INSERT INTO items VALUES (2001, 'p3', 1), (2002, 'p3', 2)`)
	e.exec(`UPDATE items SET qty = 9 WHERE id = 2001`)
	e.exec(`UPDATE items SET id = 2500 WHERE id = 1500`)
	e.waitMirror("items", "items", 60*time.Second, "id")

	e.exec(`DELETE FROM items WHERE id >= 2000`)
	e.exec(`ALTER TABLE items DETACH PARTITION items_p3`)
	e.exec(`INSERT INTO items VALUES (22, 'after detach', 1)`)
	e.waitMirror("items", "items", 60*time.Second, "id")
	require.NoError(t, daemon.stop())

	// Changes written while the publication named the partitions arrive
	// under the partitions' names even after the daemon fixes the setting.
	e.exec(`ALTER PUBLICATION ` + "pub_" + e.name + ` SET (publish_via_partition_root = false)`)
	e.exec(`INSERT INTO items VALUES (23, 'by partition', 1), (1023, 'by partition', 2)`)
	e.exec(`UPDATE items SET name = 'by partition' WHERE id IN (5, 1005)`)
	e.exec(`DELETE FROM items WHERE id IN (6, 1006)`)
	e.exec(`UPDATE items SET id = 1600 WHERE id = 7`)
	daemon = e.start(cfg)
	e.waitMirror("items", "items", 60*time.Second, "id")
	require.NoError(t, daemon.stop())
	require.NoError(t, e.db.QueryRow(context.Background(), "SELECT pubviaroot FROM pg_publication WHERE pubname = $1", "pub_"+e.name).Scan(&viaRoot))
	require.True(t, viaRoot, "the daemon sets publish_via_partition_root on a publication it can alter")
}

// check says when a publication made by another role does not publish
// through the partition root, with the command its owner must run.
func TestCheckPublicationViaRoot(t *testing.T) {
	e := newEnv(t, partitionedSchema)
	pub := "pub_" + e.name
	e.exec(`CREATE PUBLICATION ` + pub + ` FOR TABLE items`)

	items := app.Check(context.Background(), e.config(itemsMapping), app.Deps{Logger: quietLogger(), Writers: writers(e)})
	own := checkItem(t, items, "publication ")
	require.Equal(t, app.CheckOK, own.Status, "%+v", own)
	require.Contains(t, own.Detail, "sets publish_via_partition_root = true")
	require.Contains(t, checkItem(t, items, "table public.items").Detail, "partitioned")

	dsn, err := cluster.CreateRole(context.Background(), "other_"+e.name, true)
	require.NoError(t, err)
	e.dsn, err = pgtest.WithDatabase(dsn, e.name)
	require.NoError(t, err)
	items = app.Check(context.Background(), e.config(itemsMapping), app.Deps{Logger: quietLogger(), Writers: writers(e)})
	foreign := checkItem(t, items, "publication ")
	require.Equal(t, app.CheckFail, foreign.Status, "%+v", foreign)
	require.Contains(t, foreign.Detail, "ALTER PUBLICATION "+`"`+pub+`"`+" SET (publish_via_partition_root = true)")
}

// A TRUNCATE of a partitioned table is met by the table's on_truncate
// policy, never passed over. (PostgreSQL does not publish a TRUNCATE of a
// single partition through the root at all; check and the docs say so.)
func TestPartitionTruncateHalts(t *testing.T) {
	e := newEnv(t, partitionedSchema)
	e.exec(`INSERT INTO items VALUES (1, 'a', 1), (1001, 'b', 2)`)
	daemon := e.startStreaming(e.config(itemsMapping))
	e.waitMirror("items", "items", 60*time.Second, "id")
	e.exec(`TRUNCATE items`)
	err := waitStopped(t, daemon, "TRUNCATE with on_truncate: halt")
	require.ErrorContains(t, err, "public.items")
	require.ErrorContains(t, err, "on_truncate: halt")
}
