package feishu

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
	"github.com/replicator-cdc/replicator/targets/isolate"
)

func TestVerdict(t *testing.T) {
	recs := []replicator.Record{
		upsertRec(idField(1), field("big", val(replicator.KindText, "12")), field("name", val(replicator.KindText, "abc"))),
		upsertRec(idField(2), field("big", val(replicator.KindText, "abc")), field("name", val(replicator.KindText, "x"))),
		upsertRec(idField(3), field("big", val(replicator.KindText, "abc")), field("name", replicator.Null)),
		upsertRec(idField(4), field("big", val(replicator.KindText, "1e99")), field("name", val(replicator.KindText, "x"))),
	}
	dels := []replicator.Record{deleteRec(idField(1)), deleteRec(field("id", val(replicator.KindText, "seven")))}
	cases := []struct {
		name string
		msg  string
		recs []replicator.Record
		kind isolate.Kind
		bad  []int
	}{
		{"value in one column", `param is invalid: invalid input syntax for type bigint: "1e99"`, recs, isolate.Refused, []int{3}},
		{"value in two columns", `param is invalid: invalid input syntax for type bigint: "abc"`, recs, isolate.Refused, nil},
		{"value nobody sends", `param is invalid: invalid input syntax for type bigint: "zzz"`, recs, isolate.Refused, nil},
		{"out of range", `value "1e99" is out of range for type integer`, recs, isolate.Refused, []int{3}},
		{"float out of range", `"1e99" is out of range for type double precision`, recs, isolate.Refused, []int{3}},
		{"date out of range", `date/time field value out of range: "12"`, recs, isolate.Refused, []int{0}},
		{"quoted value looks like a table", `invalid input syntax for type bigint: "table t not found"`, recs, isolate.Refused, nil},
		{"delete key", `invalid input syntax for type bigint: "seven"`, dels, isolate.Refused, []int{1}},
		{"not null, sent null", `null value in column "name" of relation "customers" violates not-null constraint`, recs, isolate.Refused, []int{2}},
		{"not null, left out", `null value in column "note" of relation "customers" violates not-null constraint`, recs, isolate.TableFailing, nil},
		{"table not found", `param is invalid: table "customers" not found`, recs, isolate.TableFailing, nil},
		{"workspace not found", `param is invalid: workspace "ws" not found`, recs, isolate.TableFailing, nil},
		{"relation missing", `relation "public.customers" does not exist`, recs, isolate.TableFailing, nil},
		{"column missing", `could not find the "nick" column of "customers"`, recs, isolate.TableFailing, nil},
		{"postgrest column missing", `Could not find the 'nick' column of 'customers' in the schema cache`, recs, isolate.TableFailing, nil},
		{"column does not exist", `column "nick" of relation "customers" does not exist`, recs, isolate.TableFailing, nil},
		{"no arbiter", `there is no unique or exclusion constraint matching the ON CONFLICT specification`, recs, isolate.TableFailing, nil},
		{"permission", `permission denied for table customers`, recs, isolate.TableFailing, nil},
		{"bare", `param is invalid`, recs, isolate.Refused, nil},
		{"unique", `duplicate key value violates unique constraint on (email)`, recs, isolate.Refused, nil},
		{"unique with a wordy value", `duplicate key value violates unique constraint "k" (Key (email)=(table not found) already exists.)`, recs, isolate.Refused, nil},
	}
	for _, c := range cases {
		a, _ := verdict(&apiError{status: 400, code: codeInvalidParam, msg: c.msg}, c.recs)
		assert.Equal(t, c.kind, a.Kind, c.name)
		var bad []int
		for _, b := range a.Bad {
			bad = append(bad, b.Index)
			assert.Contains(t, b.Reason, c.msg, c.name)
		}
		assert.Equal(t, c.bad, bad, c.name)
	}
}

// TestTableFailureWindowLosesNothing: for a stretch of calls the API
// answers 2320001 for the table (naming it, or as a bare "param is
// invalid"), schema reads included, while a stream of batches is written.
// Nothing is rejected, every record lands after the window, the table is
// exact, and the failure was reported once and cleared once.
func TestTableFailureWindowLosesNothing(t *testing.T) {
	for _, msg := range []string{`param is invalid: table "customers" not found`, ""} {
		t.Run(fmt.Sprintf("msg=%q", msg), func(t *testing.T) {
			e := newEnv(t, feishufake.Options{})
			e.addCustomers()
			e.cfg.MaxBatchRows = 7
			var health testkit.HealthEvents
			w, err := New(e.cfg, Deps{Logger: slog.New(slog.NewTextHandler(e.logs, nil)), Metrics: e.m, HTTPClient: e.http, TableHealth: health.Hook})
			require.NoError(t, err)
			want := map[string]string{}
			var batches [][]replicator.Record
			for b := range 6 {
				var recs []replicator.Record
				for i := range 20 {
					id := (b*7 + i) % 60
					if b > 0 && i%5 == 0 {
						recs = append(recs, deleteRec(idField(id)))
						delete(want, fmt.Sprint(id))
						continue
					}
					name := fmt.Sprintf("b%d-%d", b, id)
					recs = append(recs, upsertRec(idField(id), field("name", val(replicator.KindText, name))))
					want[fmt.Sprint(id)] = name
				}
				batches = append(batches, recs)
			}
			e.write(w, customers, batches[0]...)
			e.fake.FailTable("customers", 40, msg)
			for _, recs := range batches[1:] {
				assert.Empty(t, e.write(w, customers, recs...), "no record is rejected for the table's failure")
			}
			got := map[string]string{}
			for id, r := range e.byID("customers", "id") {
				got[id] = r["name"].(string)
			}
			assert.Equal(t, want, got)
			assert.Equal(t, []string{"customers:failing", "customers:ok"}, health.Events())
			assert.Equal(t, 0.0, testutil.ToFloat64(e.m.TableFailing.WithLabelValues("lark", "customers")))
			if msg != "" {
				assert.Positive(t, counter(e.m.Errors, "lark", "table"))
				assert.Equal(t, 0.0, counter(e.m.Errors, "lark", "rejected"))
			}
			assert.Equal(t, 1, strings.Count(e.logs.String(), "failing as a whole"), "one log line per change of state")
			assert.Equal(t, 1, strings.Count(e.logs.String(), "recovered"))
		})
	}
}

// TestBadRowsIsolatedWhileHealthy: rows whose values the table refuses are
// still rejected, the rest lands: pinned by the quoted value, by splitting
// when the message names no value, and a lone bad row by a probe.
func TestBadRowsIsolatedWhileHealthy(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	require.NoError(t, e.fake.AddTable("people", []feishufake.Column{
		{Name: "id", DataType: "bigint", IsUnique: true},
		{Name: "email", DataType: "text", IsUnique: true, AllowNull: true},
	}))
	w := e.writer()

	rej := e.write(w, customers, upsertRec(idField(1), field("big", val(replicator.KindText, "lone"))))
	require.Len(t, rej, 1, "a lone bad row")
	assert.Contains(t, rej[0].Reason, `invalid input syntax for type bigint: "lone"`)

	people := replicator.TableSpec{Table: "people", Key: []string{"id"}, Columns: []string{"id", "email"}}
	e.write(w, people, upsertRec(idField(1000), field("email", val(replicator.KindText, "taken"))))
	var recs []replicator.Record
	for i := range 100 {
		email := fmt.Sprintf("p%d@x", i)
		if i == 17 || i == 71 {
			email = "taken"
		}
		recs = append(recs, upsertRec(idField(i), field("email", val(replicator.KindText, email))))
	}
	rej = e.write(w, people, recs...)
	var ids []string
	for _, r := range rej {
		ids = append(ids, string(r.Record.Key[0].Value.Raw))
		assert.Contains(t, r.Reason, "duplicate key value")
	}
	assert.ElementsMatch(t, []string{"17", "71"}, ids, "unnamed refusals isolated by splitting")
	assert.Len(t, e.fake.Rows("people"), 99)
	assert.Equal(t, 0.0, testutil.ToFloat64(e.m.TableFailing.WithLabelValues("lark", "people")))
}

// TestRejectIsolationRequestBound: 1,000 rows of which 1% carry a value
// the column refuses cost at most twice the requests of 1,000 clean rows.
func TestRejectIsolationRequestBound(t *testing.T) {
	count := func(bad int) int {
		e := newEnv(t, feishufake.Options{})
		e.addCustomers()
		recs := isolationRows(1000, bad, false)
		rej := e.write(e.writer(), customers, recs...)
		require.Len(t, rej, bad)
		require.Len(t, e.fake.Rows("customers"), 1000-bad)
		return len(e.requests(http.MethodPost, "/records"))
	}
	clean, dirty := count(0), count(10)
	t.Logf("1,000 rows: %d requests clean, %d with 10 bad rows", clean, dirty)
	assert.LessOrEqual(t, dirty, 2*clean)
}

// isolationRows are n upserts of which bad (spread evenly) send a text the
// bigint column refuses: the same text, or each its own when distinct.
func isolationRows(n, bad int, distinct bool) []replicator.Record {
	recs := make([]replicator.Record, n)
	for i := range recs {
		big := val(replicator.KindInt, fmt.Sprint(i))
		if bad > 0 && i%(n/bad) == n/bad/2 {
			text := "n/a"
			if distinct {
				text = fmt.Sprintf("n/a %d", i)
			}
			big = val(replicator.KindText, text)
		}
		recs[i] = upsertRec(idField(i), field("name", val(replicator.KindText, fmt.Sprintf("customer %d", i))), field("big", big))
	}
	return recs
}

// TestRepeatedBadValueSetAside: once PostgreSQL refused a value for a
// column, later requests of the same batch leave the rows carrying it
// aside, and one request of their own rejects them all at the end.
func TestRepeatedBadValueSetAside(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	e.cfg.MaxBatchRows = 100
	e.cfg.MaxConcurrentRequests = 1
	recs := isolationRows(1000, 10, false)
	rej := e.write(e.writer(), customers, recs...)
	require.Len(t, rej, 10)
	for _, r := range rej {
		assert.Contains(t, r.Reason, `invalid input syntax for type bigint: "n/a"`)
	}
	assert.Len(t, e.fake.Rows("customers"), 990)
	posts := e.requests(http.MethodPost, "/records")
	assert.LessOrEqual(t, len(posts), 12, "10 clean requests, one refused, one for the rows set aside")
}
