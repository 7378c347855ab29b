package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/internal/testkit"
)

const peopleSchema = `
CREATE TABLE people (id bigint PRIMARY KEY, name text, active boolean NOT NULL);
ALTER TABLE people REPLICA IDENTITY FULL;
INSERT INTO people VALUES (1, 'ann', true), (2, 'bob', false), (3, 'cy', true);
`

func peopleMapping(where string) string {
	return `
  - source: public.people
    target: mem
    table: people
    where: "` + where + `"
`
}

// A row filter limits the snapshot and the stream to the matching rows; a
// row an UPDATE moves out of the filter is deleted from the target, one it
// moves in is upserted; a changed filter applies from the next start.
func TestRowFilterFollowsRowsInAndOut(t *testing.T) {
	e := newEnv(t, peopleSchema)
	daemon := e.startStreaming(e.config(peopleMapping("active")))
	e.waitMirror("(SELECT * FROM people WHERE active)", "people", 30*time.Second, "id")

	e.exec(`UPDATE people SET active = false WHERE id = 1`)
	e.exec(`UPDATE people SET active = true, name = 'bobby' WHERE id = 2`)
	e.exec(`INSERT INTO people VALUES (4, 'dee', false), (5, 'eve', true)`)
	e.exec(`UPDATE people SET name = 'dee2' WHERE id = 4`)
	e.waitMirror("(SELECT * FROM people WHERE active)", "people", 30*time.Second, "id")
	require.NoError(t, daemon.stop())

	daemon = e.startStreaming(e.config(peopleMapping("id >= 3")))
	var filter string
	require.NoError(t, e.db.QueryRow(context.Background(),
		`SELECT rowfilter FROM pg_publication_tables WHERE pubname = $1 AND tablename = 'people'`, "pub_"+e.name).Scan(&filter))
	require.Contains(t, filter, "id >= 3")
	e.exec(`INSERT INTO people VALUES (6, 'fay', false)`)
	e.exec(`UPDATE people SET name = 'eve2' WHERE id = 5`)
	testkit.Eventually(t, 30*time.Second, "a row matching the new filter to land", func() bool {
		rows := targetRows(t, e.mem, "people")
		return rows["6"] != nil && rows["5"]["name"] == "eve2"
	})
	require.NoError(t, daemon.stop())
}

// PostgreSQL refuses every UPDATE and DELETE of a table whose publication
// filters on a column outside its replica identity, so the daemon refuses
// such a filter before it sets the publication.
func TestRowFilterOutsideReplicaIdentityIsRefused(t *testing.T) {
	e := newEnv(t, peopleSchema+`ALTER TABLE people REPLICA IDENTITY DEFAULT;`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := app.Run(ctx, e.config(peopleMapping("active")), app.Deps{Logger: quietLogger(), Writers: writers(e)})
	require.ErrorContains(t, err, "REPLICA IDENTITY FULL")
	require.ErrorContains(t, err, "replica identity (id)")

	err = app.Run(ctx, e.config(peopleMapping("nosuch > 1")), app.Deps{Logger: quietLogger(), Writers: writers(e)})
	require.ErrorContains(t, err, "is not a boolean expression")

	e.exec(`UPDATE people SET active = false WHERE id = 1`)
}

// on_truncate: empty deletes the target's rows at the TRUNCATE, in stream
// order: a row inserted before it in the same transaction goes, rows
// inserted after it (in the same or later transactions) stay.
func TestTruncateEmptiesTheTargetTable(t *testing.T) {
	e := newEnv(t, itemsSchema+`INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c');`)
	daemon := e.startStreaming(e.config(itemsMapping + "    on_truncate: empty\n"))
	e.waitMirror("items", "items", 30*time.Second, "id")

	e.exec(`BEGIN; INSERT INTO items (id, name) VALUES (4, 'd'); TRUNCATE items; INSERT INTO items (id, name) VALUES (5, 'e'), (1, 'again'); COMMIT;`)
	e.exec(`INSERT INTO items (id, name) VALUES (6, 'f')`)
	e.waitMirror("items", "items", 30*time.Second, "id")
	require.Equal(t, 3, e.mem.Len("items"))
	require.NoError(t, daemon.stop())
}

// check reports a filter PostgreSQL would turn against the application's
// updates, before anything is set up.
func TestCheckRefusesRowFilterOutsideReplicaIdentity(t *testing.T) {
	e := newEnv(t, peopleSchema+`ALTER TABLE people REPLICA IDENTITY DEFAULT;`)
	var failed []string
	for _, item := range app.Check(context.Background(), e.config(peopleMapping("active")), app.Deps{Logger: quietLogger(), Writers: writers(e)}) {
		if item.Status == app.CheckFail {
			failed = append(failed, item.Name+": "+item.Detail)
		}
	}
	require.Len(t, failed, 1)
	require.Contains(t, failed[0], "REPLICA IDENTITY FULL")
}
