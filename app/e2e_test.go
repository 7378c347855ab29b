package app_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/internal/testkit"
)

const itemsSchema = `
CREATE TABLE items (
  id bigint PRIMARY KEY,
  name text,
  qty integer,
  price numeric,
  big text,
  doc jsonb,
  at timestamptz,
  flag boolean,
  tags text[]
);
ALTER TABLE items ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE other (id serial PRIMARY KEY, note text);
`

const itemsMapping = `
  - source: public.items
    target: mem
    table: items
`

// bigValue is long enough to be stored out of line, so that updates that do
// not touch it send it as "unchanged".
func bigValue(seed int) string {
	return strings.Repeat(fmt.Sprintf("%08d", seed), 1000)
}

// TestMirrorEndToEnd drives the whole daemon: a snapshot of existing rows
// with changes running during it, NULLs, TOASTed values left unchanged,
// primary-key changes (with and without TOASTed values), a 100k-row
// transaction, and restarts at random points on the same state.
func TestMirrorEndToEnd(t *testing.T) {
	e := newEnv(t, itemsSchema)
	e.exec(`INSERT INTO items
	  SELECT g, 'name ' || g, g % 100, (g * 1.25)::numeric, CASE WHEN g % 500 = 0 THEN repeat(lpad(g::text, 8, '0'), 1000) END,
	         jsonb_build_object('g', g, 'half', g / 2.0), '2024-01-02 03:04:05.123456+00'::timestamptz + g * interval '1 second',
	         g % 2 = 0, ARRAY['a' || g, 'b,"' || g]
	  FROM generate_series(1, 20000) g`)
	e.exec(`UPDATE items SET price = 12345678901234567890.123456789, qty = NULL, name = NULL WHERE id = 7`)

	// A slow target keeps the snapshot running while the source changes.
	e.mem.BeforeWrite = func(ctx context.Context, _ replicator.Batch) error {
		time.Sleep(2 * time.Millisecond)
		return nil
	}
	cfg := e.config(itemsMapping)
	// A stop that cannot drain abandons written but unacknowledged changes:
	// they come again from the slot and must converge (invariant 3).
	abrupt := *cfg
	abrupt.Pipeline.ShutdownTimeout = time.Millisecond
	daemon := e.start(cfg)

	rng := rand.New(rand.NewPCG(1, 2))
	changes := func(n int) {
		for i := 0; i < n; i++ {
			id := 1 + rng.IntN(20000)
			switch rng.IntN(7) {
			case 0:
				e.exec(`INSERT INTO items (id, name, big) VALUES ($1, 'new', $2) ON CONFLICT (id) DO UPDATE SET name = 'upserted'`, 30000+rng.IntN(1000), bigValue(i))
			case 1:
				e.exec(`UPDATE items SET qty = coalesce(qty, 0) + 1, doc = jsonb_set(coalesce(doc, '{}'), '{n}', to_jsonb($2::int)) WHERE id = $1`, id, i)
			case 2:
				e.exec(`DELETE FROM items WHERE id = $1`, id)
			case 3:
				e.exec(`UPDATE items SET name = NULL, flag = NULL WHERE id = $1`, id)
			case 4: // a key change of a row that may hold a TOASTed value
				e.exec(`UPDATE items SET id = id + 100000 WHERE id = (SELECT id FROM items WHERE big IS NOT NULL AND id < 100000 ORDER BY id LIMIT 1 OFFSET $1)`, rng.IntN(20))
			case 5:
				e.exec(`UPDATE items SET id = id + 200000, qty = 1 WHERE id = $1`, id)
			case 6:
				e.exec(`UPDATE items SET big = $2 WHERE id = $1`, id, bigValue(i))
			}
		}
	}

	changes(150) // during the snapshot
	restarts := 0
	for round := 0; round < 3; round++ {
		changes(100)
		if round == 1 {
			e.exec(`INSERT INTO items (id, name, qty) SELECT g, 'bulk', g % 7 FROM generate_series(1000000, 1099999) g`)
		}
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		require.NoError(t, daemon.stop(), "a signal-style stop drains and returns nil")
		restarts++
		if round%2 == 0 {
			daemon = e.start(&abrupt)
		} else {
			daemon = e.start(cfg)
		}
	}
	e.exec(`UPDATE items SET qty = 5 WHERE id IN (SELECT id FROM items WHERE big IS NOT NULL LIMIT 10)`)
	changes(50)
	e.waitMirror("items", "items", 3*time.Minute, "id")
	require.NoError(t, daemon.stop())

	var toasted int
	require.NoError(t, e.db.QueryRow(context.Background(), `SELECT count(*) FROM items WHERE big IS NOT NULL`).Scan(&toasted))
	require.Positive(t, toasted, "the test must keep TOASTed values around")
	t.Logf("converged after %d restarts; %d rows with TOASTed values", restarts, toasted)
}

// Invariant 1: nothing is acknowledged before the target confirms it.
func TestAcknowledgesOnlyConfirmedWrites(t *testing.T) {
	e := newEnv(t, itemsSchema)
	var mu sync.Mutex
	hold := true
	e.mem.BeforeWrite = func(ctx context.Context, b replicator.Batch) error {
		for {
			mu.Lock()
			h := hold
			mu.Unlock()
			if !h {
				return nil
			}
			for _, r := range b.Records {
				if string(r.Key[0].Value.Raw) != "42" {
					return nil
				}
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	daemon := e.startStreaming(e.config(itemsMapping))
	e.exec(`INSERT INTO items (id, name) VALUES (1, 'one')`)
	e.waitMirror("items", "items", 30*time.Second, "id")
	testkit.Eventually(t, 15*time.Second, "the first insert to be acknowledged", func() bool { return e.lsnAtLeast(e.slotFlushed(), e.currentLSN()) })

	e.exec(`INSERT INTO items (id, name) VALUES (42, 'held')`)
	committed := e.currentLSN()
	time.Sleep(3 * time.Second) // three status intervals
	require.False(t, e.lsnAtLeast(e.slotFlushed(), committed), "the slot moved past a write the target has not confirmed: flushed %s, commit %s", e.slotFlushed(), committed)

	mu.Lock()
	hold = false
	mu.Unlock()
	testkit.Eventually(t, 15*time.Second, "the held write to be acknowledged", func() bool { return e.lsnAtLeast(e.slotFlushed(), committed) })
	e.waitMirror("items", "items", 10*time.Second, "id")
	require.NoError(t, daemon.stop())
}

// Invariant 7 (the keepalive half): with nothing in flight, the slot
// follows the server's WAL even when only unpublished tables change.
func TestIdleSlotFollowsWAL(t *testing.T) {
	e := newEnv(t, itemsSchema)
	daemon := e.startStreaming(e.config(itemsMapping))
	e.exec(`INSERT INTO items (id) VALUES (1)`)
	e.waitMirror("items", "items", 30*time.Second, "id")
	for i := 0; i < 20; i++ {
		e.exec(`INSERT INTO other (note) SELECT 'x' FROM generate_series(1, 100)`)
	}
	target := e.currentLSN()
	testkit.Eventually(t, 30*time.Second, "the slot to pass writes to an unpublished table", func() bool { return e.lsnAtLeast(e.slotFlushed(), target) })
	require.NoError(t, daemon.stop())
}
