package feishu

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/replicator-cdc/replicator"
)

// schemas keeps each table's columns from the schema answer, so that Write
// can tell, before sending, a value the column certainly cannot hold.
type schemas struct {
	mu     sync.RWMutex
	tables map[string]tableSchema
}

type tableSchema struct {
	cols map[string]column
	read time.Time
}

func (s *schemas) keep(table string, cols []column) {
	byName := make(map[string]column, len(cols))
	for _, c := range cols {
		byName[c.Name] = c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tables == nil {
		s.tables = make(map[string]tableSchema)
	}
	s.tables[table] = tableSchema{cols: byName, read: time.Now()}
}

func (s *schemas) of(table string) tableSchema {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tables[table]
}

// schemaMaxAge bounds how long one schema answer alone decides that values
// are refused. Changing the column's type is the natural fix for such dead
// letters, and from then on the values must land, without a restart.
const schemaMaxAge = time.Minute

// checkValues applies stripRefused with the table's schema, read again
// first when it is older than schemaMaxAge and would refuse a value. A
// schema that cannot be read now leaves the one known in force.
func (w *Writer) checkValues(ctx context.Context, b *replicator.Batch) ([]replicator.Record, map[string][]refusedValue, []replicator.Rejection) {
	s := w.schemas.of(b.Table.Table)
	keep, stripped, rejected := stripRefused(b, s.cols)
	if len(stripped)+len(rejected) == 0 || time.Since(s.read) <= schemaMaxAge {
		return keep, stripped, rejected
	}
	cols, err := w.readColumns(ctx, b.Table.Table)
	if err != nil {
		w.log.Info("feishu: could not read the table's schema again; its last answer decides which values are refused", "table", b.Table.Table, "error", err)
		return keep, stripped, rejected
	}
	w.schemas.keep(b.Table.Table, cols)
	return stripRefused(b, w.schemas.of(b.Table.Table).cols)
}

// refusedValue is a value left out of the record that is sent.
type refusedValue struct {
	original replicator.Record
	column   string
	value    []byte
	reason   string
}

// stripRefused checks every upsert's values against the table's column
// types. A value PostgreSQL's input function certainly refuses would make
// the API refuse the whole request and, since every later update of the
// row carries it again, keep the row stale for good; so the record is sent
// without it, and the value becomes a column rejection. A refused key value,
// or a value of a NOT NULL column without a default (an upsert must carry
// it), leaves the record unwritable: it is rejected whole.
func stripRefused(b *replicator.Batch, cols map[string]column) (keep []replicator.Record, stripped map[string][]refusedValue, rejected []replicator.Rejection) {
	if cols == nil {
		return b.Records, nil, nil
	}
	keep = b.Records
	copied := false
	var shape fieldColumns
	for i, r := range b.Records {
		if r.Op != replicator.OpUpsert {
			if copied {
				keep = append(keep, r)
			}
			continue
		}
		var refused []refusedValue
		whole := ""
		for j, c := range shape.of(r.Fields, cols) {
			f := r.Fields[j]
			if c == nil || f.Value.IsNull() {
				continue
			}
			why := refusesAs(&c.column, c.typ, f.Value)
			if why == "" {
				continue
			}
			refused = append(refused, refusedValue{original: r, column: f.Name, value: f.Value.Raw, reason: why})
			switch {
			case slices.Contains(b.Table.Key, f.Name):
				whole = fmt.Sprintf("key column %q: %s", f.Name, why)
			case !c.IsAllowNull && c.DefaultValue == "":
				whole = fmt.Sprintf("column %q, NOT NULL without a default, so the row cannot go without it: %s", f.Name, why)
			}
		}
		if len(refused) == 0 {
			if copied {
				keep = append(keep, r)
			}
			continue
		}
		if !copied {
			// The batch's own slice stays as it came: the caller may hold it.
			keep = append(make([]replicator.Record, 0, len(b.Records)), b.Records[:i]...)
			copied = true
		}
		switch {
		case whole != "":
			rejected = append(rejected, replicator.Rejection{Record: r, Reason: "feishu would refuse the upsert: " + whole})
		default:
			if stripped == nil {
				stripped = make(map[string][]refusedValue)
			}
			stripped[r.KeyString()] = refused
			out := r
			out.Fields = slices.DeleteFunc(slices.Clone(r.Fields), func(f replicator.Field) bool {
				return slices.ContainsFunc(refused, func(v refusedValue) bool { return v.column == f.Name })
			})
			keep = append(keep, out)
		}
	}
	return keep, stripped, rejected
}

// fieldColumns resolves the columns of a record's fields, once for each
// run of records carrying the same columns in the same order (a batch is
// mostly one run).
type fieldColumns struct {
	fields []replicator.Field
	cols   []*typedColumn // per field; nil when the table has no such column
}

// typedColumn is a column with its type's name (typeName).
type typedColumn struct {
	column
	typ string
}

func (s *fieldColumns) of(fields []replicator.Field, cols map[string]column) []*typedColumn {
	if s.cols != nil && sameNames(s.fields, fields) {
		return s.cols
	}
	typed := make([]typedColumn, len(fields))
	s.fields, s.cols = fields, make([]*typedColumn, len(fields))
	for j, f := range fields {
		if c, ok := cols[f.Name]; ok {
			typed[j] = typedColumn{column: c, typ: typeName(c.DataType)}
			s.cols[j] = &typed[j]
		}
	}
	return s.cols
}

// settle turns the values left out into column rejections for the records
// that landed. A record the API then refused as a whole is dead-lettered as
// it came, with the values left out, and the reasons joined.
func settle(rejected []replicator.Rejection, stripped map[string][]refusedValue) []replicator.Rejection {
	if len(stripped) == 0 {
		return rejected
	}
	for i := range rejected {
		r := &rejected[i]
		if r.Column != "" {
			continue
		}
		k := r.Record.KeyString()
		vs, ok := stripped[k]
		if !ok {
			continue
		}
		r.Record = vs[0].original
		for _, v := range vs {
			r.Reason += fmt.Sprintf("; and column %q: %s", v.column, v.reason)
		}
		delete(stripped, k)
	}
	for _, vs := range stripped {
		for _, v := range vs {
			rejected = append(rejected, replicator.Rejection{Record: v.original, Column: v.column, Value: v.value,
				Reason: fmt.Sprintf("feishu: left out of the upsert, the table's column %q would refuse it: %s", v.column, v.reason)})
		}
	}
	return rejected
}
