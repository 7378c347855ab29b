package feishu

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// TestPrepare refuses only what certainly fails: a missing table, a mapped
// or key column the table does not have.
func TestPrepare(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	require.NoError(t, e.fake.AddTable("lines", []feishufake.Column{
		{Name: "region", DataType: "text", IsPrimaryKey: true},
		{Name: "id", DataType: "bigint", IsPrimaryKey: true},
		{Name: "qty", DataType: "numeric", AllowNull: true},
		{Name: "sku", DataType: "text"},
		{Name: "status", DataType: "text", Default: "new"},
	}))
	w := e.writer()
	ctx := context.Background()
	lines := replicator.TableSpec{Source: "public.lines", Table: "lines", Key: []string{"id", "region"}, Columns: []string{"region", "id", "qty", "sku"}}
	require.NoError(t, w.Prepare(ctx, []replicator.TableSpec{customers, lines}))

	cases := []struct {
		spec replicator.TableSpec
		want []string
	}{
		{replicator.TableSpec{Source: "public.c", Table: "customers", Key: []string{"id"}, Columns: []string{"id", "name", "nickname"}},
			[]string{`table "customers" has no column "nickname" (mapped from public.c)`, "add the column"}},
		{replicator.TableSpec{Source: "public.c", Table: "customers", Key: []string{"code"}, Columns: []string{"id", "name"}},
			[]string{`table "customers" has no column "code", a column of the key mapped from public.c`, "change the mapping's key"}},
		{replicator.TableSpec{Source: "public.x", Table: "nope", Key: []string{"id"}, Columns: []string{"id"}},
			[]string{`table "nope" (mapped from public.x)`, "2320001", "check that the table exists in workspace workspace_fake"}},
	}
	for _, c := range cases {
		err := w.Prepare(ctx, []replicator.TableSpec{c.spec})
		if assert.Error(t, err, c.spec.Table) {
			for _, want := range c.want {
				assert.Contains(t, err.Error(), want)
			}
		}
	}
	err := w.Prepare(ctx, []replicator.TableSpec{cases[0].spec, cases[2].spec})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nickname")
	assert.Contains(t, err.Error(), "nope", "every problem is reported at once")
}

// TestPreflightWarnsWhereTheSchemaCannotDecide: a table as the real API
// describes it (_id NOT NULL without a default; a composite unique key that
// the column list cannot show) passes with exactly one warning, and so do a
// key column not marked unique and an unmapped NOT NULL column.
func TestPreflightWarnsWhereTheSchemaCannotDecide(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	require.NoError(t, e.fake.AddTable("likes", []feishufake.Column{
		{Name: "user_id", DataType: "bigint"},
		{Name: "product_id", DataType: "bigint"},
		{Name: "note", DataType: "text", AllowNull: true},
		{Name: "seq", DataType: "bigint"},
	}, []string{"user_id", "product_id"}))
	w := e.writer()
	ctx := context.Background()
	likes := replicator.TableSpec{Source: "public.likes", Table: "likes", Key: []string{"user_id", "product_id"}, Columns: []string{"user_id", "product_id", "note", "seq"}}

	warnings, err := w.Preflight(ctx, []replicator.TableSpec{likes})
	require.NoError(t, err, "_id is filled by the platform; a composite key cannot be disproved")
	require.Len(t, warnings, 1, "%q", warnings)
	for _, want := range []string{`table "likes"`, "key (user_id, product_id)", "cannot show composite unique constraints", "stops the daemon", "create that constraint in the Feishu workspace or to change the mapping's key"} {
		assert.Contains(t, warnings[0], want)
	}

	require.NoError(t, w.Prepare(ctx, []replicator.TableSpec{likes}))
	assert.Equal(t, 1, strings.Count(e.logs.String(), "level=WARN"), e.logs.String())
	assert.Contains(t, e.logs.String(), "key (user_id, product_id)")

	single := replicator.TableSpec{Source: "public.likes", Table: "likes", Key: []string{"user_id"}, Columns: []string{"user_id", "product_id"}}
	warnings, err = w.Preflight(ctx, []replicator.TableSpec{single})
	require.NoError(t, err)
	require.Len(t, warnings, 2, "%q", warnings)
	assert.Contains(t, warnings[0], `column "user_id" is not marked unique`)
	assert.Contains(t, warnings[1], "column(s) seq are NOT NULL")
	assert.NotContains(t, warnings[1], "_id")
	assert.Contains(t, warnings[1], "map source columns to them")
}

func TestSystemColumn(t *testing.T) {
	for _, c := range []struct {
		col  column
		pks  int
		want bool
	}{
		{column{Name: "_id", DataType: "uuid", IsPrimaryKey: true}, 1, true},
		{column{Name: "_id", DataType: "text"}, 0, true},
		{column{Name: "record_id", DataType: "uuid", IsPrimaryKey: true}, 1, true},
		{column{Name: "record_id", DataType: "uuid", IsPrimaryKey: true}, 2, false},
		{column{Name: "id", DataType: "bigint", IsPrimaryKey: true}, 1, false},
		{column{Name: "owner", DataType: "uuid"}, 1, false},
	} {
		assert.Equal(t, c.want, systemColumn(&c.col, c.pks), "%+v with %d primary key columns", c.col, c.pks)
	}
}
