// Package memory is an in-memory target: the pipeline's reference writer in
// tests and benchmarks. It keeps each table as rows of JSON-encoded values.
package memory

import (
	"context"
	"fmt"
	"sync"

	"github.com/replicator-cdc/replicator"
)

// Row maps target column names to JSON-encoded values.
type Row map[string]string

// Writer applies batches to maps. Its func fields are seams for tests.
type Writer struct {
	// Reject, when set, is asked about every record; a non-empty reason
	// rejects it.
	Reject func(rec *replicator.Record) string
	// BeforeWrite, when set, runs before each batch; an error fails Write.
	BeforeWrite func(ctx context.Context, b replicator.Batch) error
	// Discard encodes records like a writer building a request but keeps
	// no rows, so that a benchmark measures the pipeline's memory rather
	// than the target's.
	Discard bool

	mu      sync.Mutex
	tables  map[string]map[string]Row
	batches int
	writes  int
}

var _ replicator.Writer = (*Writer)(nil)

// New returns an empty in-memory target.
func New() *Writer {
	return &Writer{tables: map[string]map[string]Row{}}
}

// Prepare implements replicator.Writer.
func (w *Writer) Prepare(_ context.Context, tables []replicator.TableSpec) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range tables {
		if len(t.Key) == 0 {
			return fmt.Errorf("memory: table %s has no key", t.Table)
		}
		if w.tables[t.Table] == nil {
			w.tables[t.Table] = map[string]Row{}
		}
	}
	return nil
}

// Write implements replicator.Writer.
func (w *Writer) Write(ctx context.Context, b replicator.Batch) ([]replicator.Rejection, error) {
	if w.BeforeWrite != nil {
		if err := w.BeforeWrite(ctx, b); err != nil {
			return nil, err
		}
	}
	var rejected []replicator.Rejection
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.tables[b.Table.Table]
	if t == nil {
		return nil, fmt.Errorf("memory: table %s was not prepared", b.Table.Table)
	}
	if w.Discard {
		var buf []byte
		for i := range b.Records {
			for _, f := range b.Records[i].Fields {
				buf = replicator.AppendJSON(buf[:0], f.Value)
			}
		}
		w.writes += len(b.Records)
		w.batches++
		return nil, nil
	}
	seen := make(map[string]bool, len(b.Records))
	for i := range b.Records {
		rec := &b.Records[i]
		key := KeyOf(rec.Key)
		if seen[key] {
			return nil, fmt.Errorf("memory: batch carries key %s twice", key)
		}
		seen[key] = true
		if w.Reject != nil {
			if reason := w.Reject(rec); reason != "" {
				rejected = append(rejected, replicator.Rejection{Record: *rec, Reason: reason})
				continue
			}
		}
		switch rec.Op {
		case replicator.OpDelete:
			delete(t, key)
		case replicator.OpUpsert:
			row := t[key]
			if row == nil {
				row = Row{}
				t[key] = row
			}
			for _, f := range rec.Fields {
				row[f.Name] = string(replicator.AppendJSON(nil, f.Value))
			}
		}
		w.writes++
	}
	w.batches++
	return rejected, nil
}

// KeyOf renders a key as the JSON values of its fields joined by "|".
func KeyOf(key []replicator.Field) string {
	var b []byte
	for i, f := range key {
		if i > 0 {
			b = append(b, '|')
		}
		b = replicator.AppendJSON(b, f.Value)
	}
	return string(b)
}

// Empty deletes every row of a table (on_truncate: empty).
func (w *Writer) Empty(_ context.Context, spec replicator.TableSpec) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.tables[spec.Table])
	return nil
}

// Rows returns a copy of a table's rows by KeyOf.
func (w *Writer) Rows(table string) map[string]Row {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]Row, len(w.tables[table]))
	for k, r := range w.tables[table] {
		c := make(Row, len(r))
		for n, v := range r {
			c[n] = v
		}
		out[k] = c
	}
	return out
}

// Len counts a table's rows.
func (w *Writer) Len(table string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.tables[table])
}

// Stats returns how many batches and records were applied.
func (w *Writer) Stats() (batches, writes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.batches, w.writes
}
