package feishu

import (
	"sync"

	"github.com/replicator-cdc/replicator"
)

// pinned collects, for one Write, the values PostgreSQL refused for a
// column, and the rows of later requests that carry one of them. Those
// rows are set aside and sent together at the end, where the answer to
// their own request rejects them; so a value repeated across the batch
// costs one refused request for the whole batch instead of one per
// request of 500 rows.
type pinned struct {
	mu     sync.Mutex
	values map[string]map[string]bool // column → refused input texts
	aside  []replicator.Record
}

// add records that PostgreSQL refused v for column.
func (p *pinned) add(column, v string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.values == nil {
		p.values = make(map[string]map[string]bool)
	}
	if p.values[column] == nil {
		p.values[column] = make(map[string]bool)
	}
	p.values[column][v] = true
}

// sift sets aside the records carrying a refused value and returns the rest.
func (p *pinned) sift(recs []replicator.Record) []replicator.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.values) == 0 {
		return recs
	}
	var keep []replicator.Record
	for i := range recs {
		if p.carries(&recs[i]) {
			p.aside = append(p.aside, recs[i])
			continue
		}
		keep = append(keep, recs[i])
	}
	return keep
}

func (p *pinned) carries(r *replicator.Record) bool {
	for _, f := range sentFields(r) {
		if vs := p.values[f.Name]; vs != nil && !f.Value.IsNull() && vs[inputText(f.Value)] {
			return true
		}
	}
	return false
}

// setAside returns the records set aside.
func (p *pinned) setAside() []replicator.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.aside
}
