package feishu

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

var nastyValues = []string{
	"a,b", "(x)", "in.(1,2)", `q"uote`, `back\slash`, `\`, ` lead`, "trail ", "two  spaces", "dot.colon:",
	"日本語", "emoji 😀", "", "null", "NULL", "true", "or=(a.eq.1)", "a&b=c", "%20", "tab\there", `"quoted"`, "plain",
}

func TestDeleteSingleKeyNastyValues(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	require.NoError(t, e.fake.AddTable("tags", []feishufake.Column{
		{Name: "code", DataType: "text", IsUnique: true},
		{Name: "n", DataType: "integer", AllowNull: true},
	}))
	spec := replicator.TableSpec{Table: "tags", Key: []string{"code"}, Columns: []string{"code", "n"}}
	w := e.writer()
	var ups, dels []replicator.Record
	for i, v := range nastyValues {
		code := field("code", val(replicator.KindText, v))
		ups = append(ups, upsertRec(code, field("n", val(replicator.KindInt, strconv.Itoa(i)))))
		ups = append(ups, upsertRec(field("code", val(replicator.KindText, "keep "+v)), field("n", val(replicator.KindInt, "0"))))
		dels = append(dels, deleteRec(code))
	}
	e.write(w, spec, ups...)
	require.Len(t, e.fake.Rows("tags"), 2*len(nastyValues))
	e.write(w, spec, dels...)
	rows := e.byID("tags", "code")
	assert.Len(t, rows, len(nastyValues))
	for _, v := range nastyValues {
		assert.Contains(t, rows, "keep "+v)
	}
	require.Len(t, e.requests(http.MethodDelete, "/records"), 1)
	assert.Equal(t, float64(len(nastyValues)), counter(e.m.Rows, "lark", "tags", "delete"))
}

func TestDeleteCompositeKey(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	require.NoError(t, e.fake.AddTable("lines", []feishufake.Column{
		{Name: "region", DataType: "text", IsPrimaryKey: true},
		{Name: "id", DataType: "bigint", IsPrimaryKey: true},
		{Name: "qty", DataType: "numeric", AllowNull: true},
	}))
	spec := replicator.TableSpec{Table: "lines", Key: []string{"region", "id"}, Columns: []string{"region", "id", "qty"}}
	w := e.writer()
	key := func(region string, id int) []replicator.Field {
		return []replicator.Field{field("region", val(replicator.KindText, region)), idField(id)}
	}
	var ups, dels []replicator.Record
	for i, v := range nastyValues {
		for id := range 2 {
			k := key(v, id)
			ups = append(ups, replicator.Record{Op: replicator.OpUpsert, Key: k, Fields: append(k, field("qty", val(replicator.KindNumeric, "1.5")))})
		}
		// Delete (v, i%2): the other id of the same region stays.
		dels = append(dels, replicator.Record{Op: replicator.OpDelete, Key: key(v, i%2)})
	}
	e.write(w, spec, ups...)
	e.write(w, spec, dels...)
	rows := e.fake.Rows("lines")
	require.Len(t, rows, len(nastyValues))
	left := make(map[string]string)
	for _, r := range rows {
		left[r["region"].(string)] = toString(r["id"])
	}
	for i, v := range nastyValues {
		assert.Equal(t, strconv.Itoa(1-i%2), left[v], "region %q", v)
	}
	del := e.requests(http.MethodDelete, "/records")
	require.Len(t, del, 1)
	assert.Contains(t, del[0].Query.Get("filter"), "or=(and(region.eq.")
}

func TestDeleteFilterLength(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	e.cfg.MaxFilterLength = 200
	w := e.writer()
	var ups, dels []replicator.Record
	for i := range 300 {
		ups = append(ups, upsertRec(idField(1_000_000+i)))
		if i%3 != 0 {
			dels = append(dels, deleteRec(idField(1_000_000+i)))
		}
	}
	e.write(w, customers, ups...)
	e.write(w, customers, dels...)
	assert.Len(t, e.fake.Rows("customers"), 100)
	reqs := e.requests(http.MethodDelete, "/records")
	assert.GreaterOrEqual(t, len(reqs), 9, "about 24 ids fit in 200 bytes")
	total := 0
	for _, r := range reqs {
		assert.LessOrEqual(t, len(url.QueryEscape(r.Query.Get("filter"))), 200, "the limit counts the filter as sent in the URL")
		total += r.Rows
	}
	assert.Equal(t, 200, total)
}

func TestDeleteRejectIsolation(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	w := e.writer()
	var ups, dels []replicator.Record
	for i := range 20 {
		ups = append(ups, upsertRec(idField(i)))
		dels = append(dels, deleteRec(idField(i)))
	}
	dels[7] = deleteRec(field("id", val(replicator.KindText, "seven")))
	e.write(w, customers, ups...)
	rej := e.write(w, customers, dels...)
	require.Len(t, rej, 1)
	assert.Equal(t, "seven", string(rej[0].Record.Key[0].Value.Raw))
	assert.Contains(t, rej[0].Reason, "2320001")
	assert.Len(t, e.fake.Rows("customers"), 1, "only id 7, whose delete was malformed, remains")
}

func TestDeleteFilterText(t *testing.T) {
	single := []replicator.Record{
		deleteRec(field("k", val(replicator.KindText, "a,b"))),
		deleteRec(field("k", val(replicator.KindText, `x"y\z`))),
		deleteRec(field("k", val(replicator.KindInt, "-12"))),
		deleteRec(field("k", val(replicator.KindText, ""))),
	}
	assert.Equal(t, `k=in.("a%2Cb","x%5C%22y%5C%5Cz",-12,"")`, deleteFilter([]string{"k"}, single))
	composite := []replicator.Record{
		deleteRec(field("a", val(replicator.KindInt, "1")), field("b", val(replicator.KindText, "x y"))),
		deleteRec(field("a", val(replicator.KindInt, "2")), field("b", val(replicator.KindText, "null"))),
	}
	assert.Equal(t, `or=(and(a.eq.1,b.eq."x%20y"),and(a.eq.2,b.eq."null"))`, deleteFilter([]string{"a", "b"}, composite))
}

func TestPlanRejectsNullKeyDeletes(t *testing.T) {
	b := replicator.Batch{Table: customers, Records: []replicator.Record{
		deleteRec(field("id", replicator.Null)),
		{Op: replicator.Op(9), Key: []replicator.Field{idField(1)}},
		deleteRec(idField(2)),
	}}
	jobs, rej := plan(&b, 500, 4000)
	require.Len(t, jobs, 1)
	assert.Len(t, jobs[0].recs, 1)
	assert.Len(t, rej, 2)
}
