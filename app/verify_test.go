package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

const verifySchema = `
CREATE TABLE people (id bigint PRIMARY KEY, name text, score numeric, at timestamptz);
CREATE TABLE tickets (id bigint PRIMARY KEY, title text, n integer, at timestamptz);
INSERT INTO people SELECT g, 'p' || g, g * 1.5, '2024-01-02 03:04:05.123456+00'::timestamptz + g * interval '1 minute' FROM generate_series(1, 400) g;
INSERT INTO tickets SELECT g, 't' || g, g % 7, '2024-01-02 03:04:05+00'::timestamptz + g * interval '1 hour' FROM generate_series(1, 400) g;
`

const verifyMappings = `
  - source: public.people
    target: lark
    table: people
  - source: public.tickets
    target: bots
    table: tbl_tickets
`

// TestVerifyDriftAndRepairWhileStreaming builds both mirrors with the
// daemon, edits both fakes by hand (rows deleted, added, changed) and checks
// that verify reports exactly those counts, that --repair makes verify find
// the mirrors equal, and that rows the stream changes meanwhile are never
// called drift.
func TestVerifyDriftAndRepairWhileStreaming(t *testing.T) {
	e := newEnv(t, verifySchema)
	lark := feishufake.New(feishufake.Options{RequestsPerSecond: 40})
	t.Cleanup(lark.Close)
	require.NoError(t, lark.AddTable("people", []feishufake.Column{
		{Name: "id", DataType: "bigint", IsPrimaryKey: true},
		{Name: "name", DataType: "text", AllowNull: true},
		{Name: "score", DataType: "numeric", AllowNull: true},
		{Name: "at", DataType: "timestamptz", AllowNull: true},
	}))
	bots := gptbotsfake.New(gptbotsfake.Options{APIKey: "gb-key", RequestsPerSecond: 40})
	t.Cleanup(bots.Close)
	require.NoError(t, bots.AddTable("tbl_tickets", []gptbotsfake.Field{
		{Name: "id", Type: gptbotsfake.TypeInt, Unique: true},
		{Name: "title", Type: gptbotsfake.TypeText},
		{Name: "n", Type: gptbotsfake.TypeInt},
		{Name: "at", Type: gptbotsfake.TypeDateTime},
	}))
	targets := fmt.Sprintf(`
  lark:
    type: feishu
    base_url: %s
    workspace_id: %s
    user_access_token: %s
    requests_per_second: 15
  bots:
    type: gptbots
    base_url: %s
    api_key: gb-key
    requests_per_second: 15
`, lark.URL(), lark.Options().WorkspaceID, lark.AccessToken(), bots.URL())
	cfg := e.configWithTargets(targets, verifyMappings)
	daemon := e.startStreaming(cfg)
	testkit.Eventually(t, 90*time.Second, "both mirrors", func() bool {
		return len(lark.Rows("people")) == 400 && len(bots.Rows("tbl_tickets")) == 400
	})
	ctx := context.Background()
	opts := app.VerifyOptions{Settle: 30 * time.Second, Rounds: 8}
	verify := func(repair bool) map[string]app.TableReport {
		t.Helper()
		o := opts
		o.Repair = repair
		rep, err := app.Verify(ctx, cfg, app.Deps{Logger: quietLogger()}, o)
		require.NoError(t, err)
		out := map[string]app.TableReport{}
		for _, tr := range rep.Tables {
			t.Logf("verify (repair %v) %s: rechecked %d, missing %d, extra %d, different %d, unsettled %d",
				repair, tr.Source, tr.Rechecked, tr.Missing, tr.Extra, tr.Different, tr.Unsettled)
			out[tr.Source] = tr
		}
		return out
	}
	counts := func(tr app.TableReport) [4]int { return [4]int{tr.Missing, tr.Extra, tr.Different, tr.Unsettled} }

	// Changes stream throughout, on rows the hand edits leave alone.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		next := int64(1000)
		for i := 0; i < 20000; i++ {
			select {
			case <-stop:
				return
			case <-time.After(30 * time.Millisecond):
			}
			id := 100 + rng.Int64N(300)
			var err error
			switch i % 3 {
			case 0:
				_, err = e.db.Exec(ctx, "UPDATE people SET name = $2, score = score + 1 WHERE id = $1", id, fmt.Sprint("u", i))
			case 1:
				_, err = e.db.Exec(ctx, "UPDATE tickets SET title = $2, n = n + 1 WHERE id = $1", id, fmt.Sprint("u", i))
			default:
				next++
				if _, err = e.db.Exec(ctx, "INSERT INTO people VALUES ($1, 'new', 1, now())", next); err == nil {
					_, err = e.db.Exec(ctx, "INSERT INTO tickets VALUES ($1, 'new', 1, now())", next)
				}
			}
			if err != nil {
				t.Errorf("workload: %v", err)
				return
			}
		}
	}()
	stopWorkload := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWorkload()

	before := verify(false)
	require.Equal(t, [4]int{}, counts(before["public.people"]), "before any drift: %+v", before["public.people"])
	require.Equal(t, [4]int{}, counts(before["public.tickets"]), "before any drift: %+v", before["public.tickets"])

	n, err := lark.DeleteRows("people", "id=in.(1,2,3)")
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.NoError(t, lark.InsertRow("people", map[string]any{"id": json.Number("90001"), "name": "stray"}))
	require.NoError(t, lark.InsertRow("people", map[string]any{"id": json.Number("90002")}))
	n, err = lark.UpdateRows("people", "id=in.(10,11,12,13)", map[string]any{"name": "by hand"})
	require.NoError(t, err)
	require.Equal(t, 4, n)
	_, err = lark.UpdateRows("people", "id=eq.14", map[string]any{"score": json.Number("99.5")})
	require.NoError(t, err)

	require.NoError(t, bots.DeleteRow("tbl_tickets", "id", json.Number("5")))
	require.NoError(t, bots.DeleteRow("tbl_tickets", "id", json.Number("6")))
	for _, id := range []json.Number{"80001", "80002", "80003"} {
		require.NoError(t, bots.InsertRow("tbl_tickets", map[string]any{"id": id, "title": "stray"}))
	}
	require.NoError(t, bots.UpdateRow("tbl_tickets", "id", json.Number("20"), map[string]any{"at": "1999-01-01 00:00:00"}))

	drift := verify(false)
	people, tickets := drift["public.people"], drift["public.tickets"]
	require.Equal(t, [4]int{3, 2, 5, 0}, counts(people), "%+v", people)
	require.Equal(t, [4]int{2, 3, 1, 0}, counts(tickets), "%+v", tickets)
	require.Contains(t, tickets.Examples, app.Difference{Kind: app.KindDifferent, Key: "id=20", Columns: []string{"at"}})
	require.Contains(t, people.Examples, app.Difference{Kind: app.KindDifferent, Key: "id=14", Columns: []string{"score"}})
	require.Contains(t, people.Examples, app.Difference{Kind: app.KindMissing, Key: "id=1"})
	require.Contains(t, people.Examples, app.Difference{Kind: app.KindExtra, Key: "id=90001"})
	require.False(t, people.EqualNow())

	repaired := verify(true)
	require.Equal(t, 10, repaired["public.people"].Repaired, "%+v", repaired["public.people"])
	require.Equal(t, 6, repaired["public.tickets"].Repaired, "%+v", repaired["public.tickets"])
	for _, tr := range repaired {
		require.True(t, tr.EqualNow(), "%+v", tr)
	}

	after := verify(false)
	require.Equal(t, [4]int{}, counts(after["public.people"]), "after repair: %+v", after["public.people"])
	require.Equal(t, [4]int{}, counts(after["public.tickets"]), "after repair: %+v", after["public.tickets"])

	// A stopped daemon: the change it has not written is a difference, and
	// the report says the daemon was not there to catch up.
	stopWorkload()
	end := e.currentLSN()
	testkit.Eventually(t, 60*time.Second, "the daemon to confirm the workload", func() bool { return e.lsnAtLeast(e.slotFlushed(), end) })
	require.NoError(t, daemon.stop())
	e.exec("UPDATE people SET name = 'after the stop' WHERE id = 50")
	stopped := verify(false)["public.people"]
	require.Equal(t, [4]int{0, 0, 1, 0}, counts(stopped), "%+v", stopped)
	require.True(t, stopped.Lagging)
	fixed := verify(true)["public.people"]
	require.True(t, fixed.EqualNow(), "%+v", fixed)
	require.Equal(t, [4]int{}, counts(verify(false)["public.people"]))
}
