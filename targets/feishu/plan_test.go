package feishu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
)

// A batch of upserts carrying one column set is cut into requests that are
// slices of it: no record is copied.
func TestPlanSlicesABatchOfOneColumnSet(t *testing.T) {
	var recs []replicator.Record
	for i := range 1100 {
		recs = append(recs, upsertRec(idField(i), field("name", val(replicator.KindText, "n"))))
	}
	b := replicator.Batch{Table: customers, Records: recs}
	jobs, rej := plan(&b, 500, 4000)
	assert.Empty(t, rej)
	require.Len(t, jobs, 3)
	for i, j := range jobs {
		assert.Equal(t, replicator.OpUpsert, j.op)
		assert.Same(t, &recs[i*500], &j.recs[0], "job %d", i)
	}
	assert.Len(t, jobs[2].recs, 100)
}

// plan gives every batch the requests the grouping by column set gives it:
// mixed operations, column orders, missing (unchanged) columns, bad deletes.
func TestPlanMatchesGrouping(t *testing.T) {
	shapes := [][]string{{"id", "name", "note"}, {"id", "note", "name"}, {"id", "name"}, {"id"}}
	for seed := range uint64(300) {
		rnd := rand.New(rand.NewPCG(seed, 9))
		var recs []replicator.Record
		// Most batches are of one shape; some mix.
		mixed := rnd.IntN(3) == 0
		for i := range 1 + rnd.IntN(40) {
			shape := shapes[0]
			if mixed {
				shape = shapes[rnd.IntN(len(shapes))]
			}
			switch {
			case mixed && rnd.IntN(8) == 0:
				recs = append(recs, deleteRec(idField(i)))
			case mixed && rnd.IntN(20) == 0:
				recs = append(recs, deleteRec(field("id", replicator.Null)))
			default:
				fields := []replicator.Field{}
				for _, name := range shape {
					if name == "id" {
						fields = append(fields, idField(i))
					} else {
						fields = append(fields, field(name, val(replicator.KindText, fmt.Sprint(name, i))))
					}
				}
				recs = append(recs, upsertRec(fields...))
			}
		}
		maxRows := 1 + rnd.IntN(12)
		b := replicator.Batch{Table: customers, Records: recs}
		jobs, rej := plan(&b, maxRows, 4000)
		wantJobs, wantRej := planGrouped(&b, maxRows, 4000)
		require.Equal(t, wantJobs, jobs, "seed %d", seed)
		require.Equal(t, wantRej, rej, "seed %d", seed)
	}
}
