package pipeline

import (
	"maps"
	"slices"
	"time"

	"github.com/replicator-cdc/replicator"
)

// unitCount is how many records of one tracker unit a batch carries.
type unitCount struct {
	tracker *Tracker
	id      txnID
	n       int
}

// batch accumulates one target table's records, one per key: a later
// record of a key replaces the earlier one (design invariant 2).
type batch struct {
	records []replicator.Record
	index   map[string]int
	bytes   int64
	units   []unitCount
	// keys and first go with records: each one's key, and the index in
	// units of the first unit that changed it in this batch.
	keys    []string
	first   []int32
	started time.Time
	// empty marks the batch that empties the target table (a TRUNCATE
	// under on_truncate: empty); it carries no records.
	empty bool
	rows  int // the most records it is sent with (BatchRows)
}

// newBatch starts a batch sized for up to 64 of its rows records, so that
// many small batches waiting in queues stay small; one that outgrows them
// is filling up and grows to all its rows at once (grow).
func newBatch(rows int) *batch {
	n := min(rows, 64)
	return &batch{records: make([]replicator.Record, 0, n), index: make(map[string]int, n), keys: make([]string, 0, n),
		first: make([]int32, 0, n), started: time.Now(), rows: rows}
}

// grow makes room for the rest of the batch's rows in one step: doubling
// would allocate the records and the key index several times over, a
// large share of what a streamed row allocates.
func (b *batch) grow() {
	b.records = slices.Grow(b.records, b.rows-len(b.records))
	b.keys = slices.Grow(b.keys, b.rows-len(b.keys))
	b.first = slices.Grow(b.first, b.rows-len(b.first))
	index := make(map[string]int, b.rows)
	maps.Copy(index, b.index)
	b.index = index
}

func (b *batch) add(rec replicator.Record, size int64, tr *Tracker, id txnID) {
	b.bytes += size
	if n := len(b.units); n > 0 && b.units[n-1].tracker == tr && b.units[n-1].id == id {
		b.units[n-1].n++
	} else {
		b.units = append(b.units, unitCount{tracker: tr, id: id, n: 1})
	}
	key := rec.KeyString()
	i, seen := b.index[key]
	if !seen {
		if len(b.records) == cap(b.records) && b.rows > len(b.records) {
			b.grow()
		}
		b.index[key] = len(b.records)
		b.records = append(b.records, rec)
		b.keys = append(b.keys, key)
		b.first = append(b.first, int32(len(b.units)-1))
		return
	}
	b.records[i] = coalesce(b.records[i], rec)
}

// holds reports whether b has a record of key.
func (b *batch) holds(key string) bool {
	_, ok := b.index[key]
	return ok
}

// take moves from's record i into b, coalesced with b's record of the same
// key if b has one. b is an earlier batch that has not left yet: either
// one holding the key, which then carries the key's latest state, or one
// with room when no batch holds the key. The first unit that changed the
// record in from is counted once more, in its tracker and in b, so that no
// transaction from that one on is acknowledged before b is written too
// (invariant 1: acknowledgements are a contiguous prefix).
func (b *batch) take(from *batch, i int) {
	key, rec := from.keys[i], from.records[i]
	u := from.units[from.first[i]]
	u.tracker.Add(u.id, 1)
	if n := len(b.units); n > 0 && b.units[n-1].tracker == u.tracker && b.units[n-1].id == u.id {
		b.units[n-1].n++
	} else {
		b.units = append(b.units, unitCount{tracker: u.tracker, id: u.id, n: 1})
	}
	if j, ok := b.index[key]; ok {
		b.records[j] = coalesce(b.records[j], rec)
	} else {
		b.index[key] = len(b.records)
		b.records = append(b.records, rec)
		b.keys = append(b.keys, key)
		b.first = append(b.first, int32(len(b.units)-1))
	}
	size := min(int64(rec.Size()), from.bytes)
	from.bytes -= size
	b.bytes += size
	last := len(from.records) - 1
	if i != last {
		from.records[i], from.keys[i], from.first[i] = from.records[last], from.keys[last], from.first[last]
		from.index[from.keys[i]] = i
	}
	from.records[last] = replicator.Record{}
	from.records, from.keys, from.first = from.records[:last], from.keys[:last], from.first[:last]
	delete(from.index, key)
}

// coalesce keeps the latest state of a key. An upsert following an upsert
// keeps the earlier values of columns the later one did not send (unchanged
// TOAST values); anything else simply replaces.
func coalesce(prev, next replicator.Record) replicator.Record {
	if prev.Op != replicator.OpUpsert || next.Op != replicator.OpUpsert {
		return next
	}
	var kept []replicator.Field
	for _, f := range prev.Fields {
		if _, ok := next.Field(f.Name); !ok {
			kept = append(kept, f)
		}
	}
	if len(kept) == 0 {
		return next
	}
	merged := next
	merged.Fields = append(append(make([]replicator.Field, 0, len(next.Fields)+len(kept)), next.Fields...), kept...)
	return merged
}

// confirm tells the trackers the batch's records are written.
func (b *batch) confirm() {
	for _, u := range b.units {
		u.tracker.Done(u.id, u.n)
	}
}

func (b *batch) counts() (upserts, deletes int) {
	for i := range b.records {
		if b.records[i].Op == replicator.OpDelete {
			deletes++
		} else {
			upserts++
		}
	}
	return upserts, deletes
}
