package feishu

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

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
		{replicator.TableSpec{Source: "public.c", Table: "customers", Key: []string{"name"}, Columns: []string{"id", "name"}},
			[]string{"key (name)", "neither a unique column nor the table's primary key (_id)", "mark the column unique"}},
		{replicator.TableSpec{Source: "public.l", Table: "lines", Key: []string{"id"}, Columns: []string{"region", "id", "sku"}},
			[]string{"key (id)"}},
		{replicator.TableSpec{Source: "public.l", Table: "lines", Key: []string{"region", "id"}, Columns: []string{"region", "id", "qty"}},
			[]string{`column "sku" is NOT NULL without a default and not mapped`}},
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
	err := w.Prepare(ctx, []replicator.TableSpec{cases[0].spec, cases[4].spec})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nickname")
	assert.Contains(t, err.Error(), "nope", "every problem is reported at once")
}
