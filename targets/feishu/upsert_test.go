package feishu

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

func TestUpsertGroupsByColumnSet(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	w := e.writer()
	text := func(s string) replicator.Value { return val(replicator.KindText, s) }
	e.write(w, customers,
		upsertRec(idField(1), field("name", text("a")), field("note", text("large TOASTed text"))),
		upsertRec(idField(2), field("name", text("b")), field("note", text("n2"))),
	)
	// Row 1's note was unchanged, so the source left it out; row 3 sets
	// it; row 4 lists the same columns as row 3 in another order.
	e.write(w, customers,
		upsertRec(idField(1), field("name", text("A"))),
		upsertRec(idField(3), field("name", text("c")), field("note", text("n3"))),
		upsertRec(idField(4), field("note", text("n4")), field("name", text("d"))),
		upsertRec(idField(2), field("name", text("B"))),
	)
	rows := e.byID("customers", "id")
	require.Len(t, rows, 4)
	assert.Equal(t, "A", rows["1"]["name"])
	assert.Equal(t, "large TOASTed text", rows["1"]["note"], "an absent column is left untouched")
	assert.Equal(t, "B", rows["2"]["name"])
	assert.Equal(t, "n2", rows["2"]["note"])
	assert.Equal(t, "n3", rows["3"]["note"])
	assert.Equal(t, "n4", rows["4"]["note"])

	posts := e.requests(http.MethodPost, "/records")
	require.Len(t, posts, 3, "one request for the first batch, one per column set for the second")
	var sets []string
	for _, p := range posts[1:] {
		sets = append(sets, p.Query.Get("columns"))
		assert.Equal(t, "id", p.Query.Get("on_conflict"))
	}
	assert.ElementsMatch(t, []string{"id,name", "id,name,note"}, sets)
}

func TestUpsertChunks(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	var recs []replicator.Record
	for i := range 1201 {
		recs = append(recs, upsertRec(idField(i), field("name", val(replicator.KindText, "n"))))
	}
	e.write(e.writer(), customers, recs...)
	var sizes []int
	for _, r := range e.requests(http.MethodPost, "/records") {
		sizes = append(sizes, r.Rows)
	}
	assert.ElementsMatch(t, []int{500, 500, 201}, sizes)
	assert.Len(t, e.fake.Rows("customers"), 1201)
	assert.Equal(t, 1201.0, counter(e.m.Rows, "lark", "customers", "upsert"))

	e.cfg.MaxBatchRows = 300
	e.write(e.writer(), customers, recs...)
	assert.Len(t, e.requests(http.MethodPost, "/records"), 3+5)
}

func TestUpsertExactValues(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	w := e.writer()
	e.write(w, customers, upsertRec(
		idField(9007199254740993),
		field("name", val(replicator.KindText, "quote \" backslash \\ newline \n tab \t 日本語 😀")),
		field("big", val(replicator.KindInt, "-9223372036854775808")),
		field("amount", val(replicator.KindNumeric, "123456789012345678901234567890.123456789")),
		field("score", val(replicator.KindFloat, "0.1")),
		field("active", val(replicator.KindBool, "true")),
		field("created", val(replicator.KindTimestampTZ, "2024-01-02T03:04:05.123456+08:00")),
		field("day", val(replicator.KindDate, "2024-02-29")),
		field("payload", val(replicator.KindJSON, `{"n":12345678901234567890,"a":[1,2.50,null]}`)),
		field("blob", val(replicator.KindBytes, `\x00ff10`)),
	))
	row := e.byID("customers", "id")["9007199254740993"]
	require.NotNil(t, row)
	assert.Equal(t, "quote \" backslash \\ newline \n tab \t 日本語 😀", row["name"])
	assert.Equal(t, json.Number("-9223372036854775808"), row["big"])
	assert.Equal(t, json.Number("123456789012345678901234567890.123456789"), row["amount"])
	assert.Equal(t, json.Number("0.1"), row["score"])
	assert.Equal(t, true, row["active"])
	assert.Equal(t, "2024-01-01T19:04:05.123456+00:00", row["created"])
	assert.Equal(t, "2024-02-29", row["day"])
	assert.Equal(t, map[string]any{"n": json.Number("12345678901234567890"), "a": []any{json.Number("1"), json.Number("2.50"), nil}}, row["payload"])
	assert.Equal(t, `\x00ff10`, row["blob"])
}

func TestUpsertNullClears(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	w := e.writer()
	e.write(w, customers, upsertRec(idField(1), field("note", val(replicator.KindText, "x")), field("amount", val(replicator.KindNumeric, "1.5"))))
	e.write(w, customers, upsertRec(idField(1), field("note", replicator.Null), field("amount", replicator.Null)))
	row := e.byID("customers", "id")["1"]
	assert.Nil(t, row["note"])
	assert.Nil(t, row["amount"])
	assert.Contains(t, row, "note")
}

func TestBadRecordIsolation(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	var recs []replicator.Record
	for i := range 500 {
		big := val(replicator.KindInt, fmt.Sprint(i))
		if i == 123 {
			big = val(replicator.KindText, "not a number")
		}
		recs = append(recs, upsertRec(idField(i), field("big", big)))
	}
	rej := e.write(e.writer(), customers, recs...)
	require.Len(t, rej, 1)
	assert.Equal(t, "123", string(rej[0].Record.Key[0].Value.Raw))
	assert.Contains(t, rej[0].Reason, "2320001")
	assert.Contains(t, rej[0].Reason, "invalid input syntax for type bigint")
	rows := e.byID("customers", "id")
	assert.Len(t, rows, 499)
	assert.NotContains(t, rows, "123")
	posts := e.requests(http.MethodPost, "/records")
	assert.Len(t, posts, 2, "the message quotes the value: one refused request, then the rest in full")
	assert.Equal(t, 499.0, counter(e.m.Rows, "lark", "customers", "upsert"))
	assert.Positive(t, counter(e.m.Errors, "lark", "rejected"))
}

func TestUpsertBodyShape(t *testing.T) {
	body := appendUpsertBody(nil, []replicator.Record{
		upsertRec(idField(1), field("n", val(replicator.KindNumeric, "NaN")), field("t", val(replicator.KindText, `a"b`))),
		upsertRec(idField(2), field("n", val(replicator.KindNumeric, "1.10")), field("t", replicator.Null)),
	})
	var outer map[string]string
	require.NoError(t, json.Unmarshal(body, &outer))
	assert.Equal(t, `[{"id":1,"n":"NaN","t":"a\"b"},{"id":2,"n":1.10,"t":null}]`, outer["records"])
	assert.True(t, strings.HasPrefix(string(body), `{"records":"[{`))
}

// Feishu refuses a request as a whole, so a value its column cannot hold
// rejects the row (after splitting isolates it); the writer keeps no memory
// of that, and a later change of the row is tried on its own merits.
func TestRejectedRowLaterChangeLands(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	w := e.writer()
	rej := e.write(w, customers,
		upsertRec(idField(1), field("name", val(replicator.KindText, "a")), field("big", val(replicator.KindInt, "1"))),
		upsertRec(idField(2), field("name", val(replicator.KindText, "b")), field("big", val(replicator.KindText, "not a number"))))
	require.Len(t, rej, 1)
	assert.Equal(t, "2", string(rej[0].Record.Key[0].Value.Raw))
	assert.Empty(t, rej[0].Column, "Feishu refuses the row, not one value")
	assert.NotContains(t, e.byID("customers", "id"), "2")

	rej = e.write(w, customers, upsertRec(idField(2), field("name", val(replicator.KindText, "b2")), field("big", val(replicator.KindInt, "2"))))
	require.Empty(t, rej)
	row := e.byID("customers", "id")["2"]
	assert.Equal(t, "b2", row["name"])
	assert.Equal(t, "2", toString(row["big"]))
}

// An API message quoting a refused value is kept as a short prefix in the
// rejection and the logs, never the whole value.
func TestRejectionQuotesShortPrefix(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	huge := strings.Repeat("x", 1<<20)
	rej := e.write(e.writer(), customers, upsertRec(idField(1), field("big", val(replicator.KindText, huge))))
	require.Len(t, rej, 1)
	assert.Contains(t, rej[0].Reason, "invalid input syntax for type bigint")
	assert.Less(t, len(rej[0].Reason), 1024)
	assert.Less(t, len(e.logs.String()), 16<<10)
}
