package feishu

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// Empty deletes more rows than one list page holds, keys that need
// quoting in a filter included, through the list and filtered delete calls.
func TestEmptyDeletesEveryRow(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	e.addCustomers()
	require.NoError(t, e.fake.AddTable("tags", []feishufake.Column{
		{Name: "name", DataType: "text", IsUnique: true},
		{Name: "n", DataType: "bigint", AllowNull: true},
	}))
	w := e.writer()
	var recs []replicator.Record
	for i := 1; i <= 1203; i++ {
		recs = append(recs, upsertRec(idField(i), field("name", val(replicator.KindText, "x"))))
	}
	require.Empty(t, e.write(w, customers, recs...))
	tags := replicator.TableSpec{Source: "public.tags", Table: "tags", Key: []string{"name"}, Columns: []string{"name", "n"}}
	var tagRecs []replicator.Record
	for _, name := range []string{"a,b", `q"uote`, "spa ce", "(paren)", "null", "x&y=z", "ünï"} {
		tagRecs = append(tagRecs, upsertRec(field("name", val(replicator.KindText, name))))
	}
	require.Empty(t, e.write(w, tags, tagRecs...))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, w.Empty(ctx, customers))
	require.NoError(t, w.Empty(ctx, tags))
	require.Empty(t, e.fake.Rows("customers"))
	require.Empty(t, e.fake.Rows("tags"))
	require.NoError(t, w.Empty(ctx, customers), "an empty table empties at once")
}
