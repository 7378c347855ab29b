package feishu

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

func (e *env) prepared(specs ...replicator.TableSpec) *Writer {
	e.t.Helper()
	w := e.writer()
	require.NoError(e.t, w.Prepare(context.Background(), specs))
	return w
}

// TestUnholdableValueDoesNotFreezeTheRow: a value the column cannot hold
// is left out, the rest of the row lands, and so does every later update
// of the row, which carries the value again.
func TestUnholdableValueDoesNotFreezeTheRow(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	w := e.prepared(customers)
	posts := func() int { return len(e.requests(http.MethodPost, "/records")) }

	rej := e.write(w, customers, upsertRec(idField(1), field("name", val(replicator.KindText, "first")), field("big", val(replicator.KindText, "twelve"))))
	require.Len(t, rej, 1)
	require.Equal(t, "big", rej[0].Column)
	require.Equal(t, "twelve", string(rej[0].Value))
	require.Contains(t, rej[0].Reason, `"twelve"`)
	v, ok := rej[0].Record.Field("big")
	require.True(t, ok, "the rejection carries the record as it came")
	require.Equal(t, "twelve", string(v.Raw))
	require.Equal(t, 1, posts(), "one request, which the API accepted")
	row := e.byID("customers", "id")["1"]
	require.Equal(t, "first", row["name"])
	require.Nil(t, row["big"])

	rej = e.write(w, customers, upsertRec(idField(1), field("name", val(replicator.KindText, "second")), field("big", val(replicator.KindText, "twelve"))))
	require.Len(t, rej, 1)
	require.Equal(t, "big", rej[0].Column)
	require.Equal(t, "second", e.byID("customers", "id")["1"]["name"], "the later update landed")

	rej = e.write(w, customers, upsertRec(idField(1), field("name", val(replicator.KindText, "third")), field("big", val(replicator.KindInt, "12"))))
	require.Empty(t, rej)
	row = e.byID("customers", "id")["1"]
	require.Equal(t, "third", row["name"])
	require.Equal(t, "12", toString(row["big"]))
	require.Equal(t, 3, posts(), "no request was refused")
}

// TestUnwritableRecordRejectedWhole: a refused key value, or a refused
// value of a NOT NULL column without a default, leaves nothing to write:
// the record is rejected without a request, and its batch lands.
func TestUnwritableRecordRejectedWhole(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	require.NoError(t, e.fake.AddTable("stock", []feishufake.Column{
		{Name: "sku", DataType: "uuid", IsUnique: true},
		{Name: "qty", DataType: "integer"},
		{Name: "note", DataType: "text", AllowNull: true},
	}))
	spec := replicator.TableSpec{Source: "public.stock", Table: "stock", Key: []string{"sku"}, Columns: []string{"sku", "qty", "note"}}
	w := e.prepared(spec)
	sku := func(s string) replicator.Field { return field("sku", val(replicator.KindText, s)) }
	rej := e.write(w, spec,
		upsertRec(sku("not-a-uuid"), field("qty", val(replicator.KindInt, "1"))),
		upsertRec(sku("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), field("qty", val(replicator.KindText, "many"))),
		upsertRec(sku("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12"), field("qty", val(replicator.KindInt, "3"))),
		deleteRec(sku("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13")),
	)
	require.Len(t, rej, 2)
	for _, r := range rej {
		require.Empty(t, r.Column, r.Reason)
	}
	require.Contains(t, rej[0].Reason+rej[1].Reason, `key column "sku"`)
	require.Contains(t, rej[0].Reason+rej[1].Reason, `column "qty", NOT NULL`)
	require.Len(t, e.fake.Rows("stock"), 1)
	require.Len(t, e.requests(http.MethodPost, "/records"), 1)
	require.Len(t, e.requests(http.MethodDelete, "/records"), 1, "the records after a rejected one are still sent")
}

// TestLeftOutValueOfRefusedRecord: when the API refuses the rest of the
// row anyway, the record is dead-lettered whole, as it came, with both
// reasons, and no column rejection claims it was written.
func TestLeftOutValueOfRefusedRecord(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	require.NoError(t, e.fake.AddTable("people", []feishufake.Column{
		{Name: "id", DataType: "bigint", IsUnique: true},
		{Name: "email", DataType: "text", AllowNull: true, IsUnique: true},
		{Name: "age", DataType: "smallint", AllowNull: true},
	}))
	spec := replicator.TableSpec{Source: "public.people", Table: "people", Key: []string{"id"}, Columns: []string{"id", "email", "age"}}
	w := e.prepared(spec)
	email := func(s string) replicator.Field { return field("email", val(replicator.KindText, s)) }
	require.Empty(t, e.write(w, spec, upsertRec(idField(1), email("a@x"))))
	rej := e.write(w, spec,
		upsertRec(idField(2), email("a@x"), field("age", val(replicator.KindInt, "40000"))),
		upsertRec(idField(3), email("c@x"), field("age", val(replicator.KindInt, "30"))),
	)
	require.Len(t, rej, 1)
	require.Empty(t, rej[0].Column)
	require.Contains(t, rej[0].Reason, `column "age"`)
	age, ok := rej[0].Record.Field("age")
	require.True(t, ok)
	require.Equal(t, "40000", string(age.Raw))
	require.Len(t, e.fake.Rows("people"), 2)
}

// TestDistinctBadValuesCostFewRequests: 1% of the rows each carry a
// different value the column cannot hold, which the API would refuse one
// request at a time; checked before sending, they cost at most twice the
// requests of a clean batch.
func TestDistinctBadValuesCostFewRequests(t *testing.T) {
	const rows, bad = 5000, 50
	count := func(table string, bad int) int {
		e := newEnv(t, feishufake.Options{})
		require.NoError(t, e.fake.AddTable(table, []feishufake.Column{
			{Name: "id", DataType: "bigint", IsUnique: true},
			{Name: "name", DataType: "text", AllowNull: true},
			{Name: "big", DataType: "bigint", AllowNull: true},
		}))
		spec := replicator.TableSpec{Table: table, Key: []string{"id"}, Columns: []string{"id", "name", "big"}}
		w := e.prepared(spec)
		recs := isolationRows(rows, bad, true)
		rej := e.write(w, spec, recs...)
		require.Len(t, rej, bad)
		for _, r := range rej {
			require.Equal(t, "big", r.Column)
		}
		require.Len(t, e.fake.Rows(table), rows)
		return len(e.requests(http.MethodPost, "/records"))
	}
	clean, dirty := count("clean", 0), count("dirty", bad)
	require.Equal(t, rows/500, clean)
	require.LessOrEqual(t, dirty, 2*clean, fmt.Sprintf("%d requests with %d distinct bad values, %d clean", dirty, bad, clean))
}

// TestChangedColumnTypeReadAgain: once the schema answer is older than
// schemaMaxAge, a value it would refuse makes the writer read the schema
// again, so that changing the column's type lets such values land without
// a restart; a clean batch costs no schema read.
func TestChangedColumnTypeReadAgain(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	w := e.prepared(customers)
	reads := func() int { return len(e.requests(http.MethodGet, "/tables/customers")) }
	big := func(id int, s string) replicator.Record {
		return upsertRec(idField(id), field("big", val(replicator.KindText, s)))
	}
	require.Len(t, e.write(w, customers, big(1, "twelve")), 1)
	require.Equal(t, 1, reads(), "a fresh schema answer decides alone")

	// The table made again, with big as text now.
	require.NoError(t, e.fake.AddTable("customers", []feishufake.Column{
		{Name: "id", DataType: "bigint", IsUnique: true},
		{Name: "big", DataType: "text", AllowNull: true},
	}))
	require.Len(t, e.write(w, customers, big(2, "thirteen")), 1)
	require.Equal(t, 1, reads())

	w.schemas.mu.Lock()
	s := w.schemas.tables["customers"]
	s.read = s.read.Add(-2 * schemaMaxAge)
	w.schemas.tables["customers"] = s
	w.schemas.mu.Unlock()
	require.Empty(t, e.write(w, customers, big(3, "fourteen")))
	require.Equal(t, 2, reads())
	require.Equal(t, "fourteen", e.byID("customers", "id")["3"]["big"])
	require.Empty(t, e.write(w, customers, big(4, "fifteen")))
	require.Equal(t, 2, reads())
}
