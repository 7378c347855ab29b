package feishu

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

func TestMissingConstraint(t *testing.T) {
	for msg, want := range map[string]bool{
		"there is no unique or exclusion constraint matching the ON CONFLICT specification":                   true,
		"param is invalid: there is no unique or exclusion constraint matching the ON CONFLICT specification": true,
		"THERE IS NO UNIQUE OR EXCLUSION CONSTRAINT MATCHING THE ON CONFLICT SPECIFICATION":                   true,
		`{"code":"42P10","message":"there is no unique or exclusion constraint matching"}`:                    true,
		"param is invalid": false,
		"param is invalid: record 3: duplicate key value violates unique constraint on (user_id, product_id)": false,
		`param is invalid: record 0: column "n": invalid input syntax for type bigint: "x"`:                   false,
		"": false,
	} {
		assert.Equal(t, want, missingConstraint(msg), msg)
	}
}

// TestUpsertWithoutConstraintIsFatal: an upsert whose key matches no unique
// constraint stops the writer with the table, the key and the fix, after a
// single request: it is never split into per-row rejections.
func TestUpsertWithoutConstraintIsFatal(t *testing.T) {
	e := newEnv(t, feishufake.Options{})
	require.NoError(t, e.fake.AddTable("likes", []feishufake.Column{
		{Name: "user_id", DataType: "bigint"},
		{Name: "product_id", DataType: "bigint"},
		{Name: "note", DataType: "text", AllowNull: true},
	}))
	w := e.writer()
	spec := replicator.TableSpec{Source: "public.likes", Table: "likes", Key: []string{"user_id", "product_id"}, Columns: []string{"user_id", "product_id", "note"}}
	var recs []replicator.Record
	for i := range 8 {
		key := []replicator.Field{field("user_id", val(replicator.KindInt, "1")), idFieldNamed("product_id", i)}
		recs = append(recs, replicator.Record{Op: replicator.OpUpsert, Key: key, Fields: append(key, field("note", val(replicator.KindText, "n")))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rej, err := w.Write(ctx, replicator.Batch{Table: spec, Records: recs})
	require.Error(t, err)
	assert.Empty(t, rej)
	for _, want := range []string{`table "likes"`, "no unique constraint on exactly (user_id, product_id)", "create a unique constraint on (user_id, product_id) in the Feishu workspace", "change the mapping's key", "2320001"} {
		assert.Contains(t, err.Error(), want)
	}
	assert.Len(t, e.requests(http.MethodPost, "/records"), 1, "the request is not split")
	assert.Equal(t, 1.0, counter(e.m.Requests, "lark", "likes", "upsert", "fatal"))
	assert.Empty(t, e.fake.Rows("likes"))
}

func idFieldNamed(name string, n int) replicator.Field {
	f := idField(n)
	f.Name = name
	return f
}
