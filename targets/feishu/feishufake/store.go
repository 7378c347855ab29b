package feishufake

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Column describes a table column.
type Column struct {
	Name string
	// DataType is a PostgreSQL type name ("bigint", "text", "numeric",
	// "timestamptz", "jsonb", ...). Types the fake does not know are stored
	// as text.
	DataType string
	// IsPrimaryKey marks the columns of the table's natural key. An aPaaS
	// table's primary key is always the system column "_id", so the fake
	// makes these columns NOT NULL and puts one unique constraint over them
	// all: the schema answer shows it as is_unique on a lone column, and not
	// at all when it spans several (like every composite unique constraint).
	IsPrimaryKey bool
	IsUnique     bool
	AllowNull    bool
	// Default is the column default in the column type's text form, "" for
	// none.
	Default string
}

// idColumn is the system primary key every aPaaS table has; record_ids are
// its values. AddTable puts it first, at idPos.
const (
	idColumn = "_id"
	idPos    = 0
)

type row struct {
	vals []any // by column position
}

// index is one unique constraint: the primary key, a unique column or a
// composite unique constraint.
type index struct {
	cols []int
	rows map[string]*row
}

type table struct {
	name    string
	cols    []Column
	kinds   []kind
	pos     map[string]int
	indexes []*index
	rows    []*row
	nextID  int
}

// AddTable creates (or replaces) a table. Like every aPaaS table it has the
// system primary key "_id" (uuid, NOT NULL, filled by the platform when an
// insert leaves it out, and reported without a default_value, as the real
// schema answer does); a column named "_id" in cols only sets its type.
// unique lists composite unique constraints, each by column names: the fake
// enforces them and lets on_conflict name them, but the schema answer does
// not show them, because the real one cannot.
func (s *Server) AddTable(name string, cols []Column, unique ...[]string) error {
	t := &table{name: name, pos: make(map[string]int)}
	id := Column{Name: idColumn, DataType: "uuid"}
	var natural []string
	for _, c := range cols {
		if c.Name == idColumn {
			id.DataType = c.DataType
			continue
		}
		if c.IsPrimaryKey {
			natural = append(natural, c.Name)
		}
		t.cols = append(t.cols, c)
	}
	t.cols = append([]Column{id}, t.cols...)
	for i := range t.cols {
		c := &t.cols[i]
		if c.Name == "" {
			return errors.New("feishufake: column without a name")
		}
		if _, dup := t.pos[c.Name]; dup {
			return fmt.Errorf("feishufake: table %s: column %s declared twice", name, c.Name)
		}
		c.IsPrimaryKey = i == idPos
		if c.IsPrimaryKey || slices.Contains(natural, c.Name) {
			c.AllowNull = false
		}
		if len(natural) == 1 && natural[0] == c.Name {
			c.IsUnique = true
		}
		t.pos[c.Name] = i
		t.kinds = append(t.kinds, kindOf(c.DataType))
		if c.IsUnique && !c.IsPrimaryKey {
			t.indexes = append(t.indexes, &index{cols: []int{i}, rows: make(map[string]*row)})
		}
	}
	t.indexes = append(t.indexes, &index{cols: []int{idPos}, rows: make(map[string]*row)})
	if len(natural) > 1 {
		unique = append([][]string{natural}, unique...)
	}
	for _, u := range unique {
		ix := &index{rows: make(map[string]*row)}
		for _, n := range u {
			i, ok := t.pos[n]
			if !ok {
				return fmt.Errorf("feishufake: table %s: unique constraint on unknown column %s", name, n)
			}
			ix.cols = append(ix.cols, i)
		}
		t.indexes = append(t.indexes, ix)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tables[name] = t
	return nil
}

// Rows returns a copy of a table's rows in insertion order, keyed by column
// name, "_id" included. Values are as stored: nil for NULL, json.Number for
// numbers (exact digits), bool, string (text, uuid, bytea as \x hex, dates
// and times in PostgreSQL's JSON output form, timestamptz in UTC), and
// decoded JSON for json and jsonb.
func (s *Server) Rows(name string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tables[name]
	if !ok {
		return nil
	}
	out := make([]map[string]any, len(t.rows))
	for i, r := range t.rows {
		out[i] = t.object(r)
	}
	return out
}

func (t *table) object(r *row) map[string]any {
	m := make(map[string]any, len(t.cols))
	for i, c := range t.cols {
		m[c.Name] = r.vals[i]
	}
	return m
}

// key is the index key of vals, and false when a key column is NULL (NULLs
// never conflict).
func (t *table) key(ix *index, vals []any) (string, bool) {
	var b []byte
	for _, c := range ix.cols {
		if vals[c] == nil {
			return "", false
		}
		v := canonical(t.kinds[c], vals[c])
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
	}
	return string(b), true
}

// defaultValue is what an insert stores in column i when the row does not set it.
func (t *table) defaultValue(i int, now time.Time) (any, error) {
	if i == idPos {
		t.nextID++
		return fmt.Sprintf("%08x-0000-4000-8000-%012x", now.Unix()&0xffffffff, t.nextID), nil
	}
	if t.cols[i].Default == "" {
		return nil, nil
	}
	return parseText(t.kinds[i], t.cols[i].Default)
}

// undo restores the table after a failed request: every change of a request
// is applied in place and reverted if a later row fails, so that a request
// is all or nothing.
type undo struct {
	rowCount int
	updated  []updatedRow
}

type updatedRow struct {
	r    *row
	old  []any
	keys []indexKey
}

type indexKey struct {
	ix  *index
	key string
	set bool
}

// insertRow adds r to the table and its indexes, failing on a unique violation.
func (t *table) insertRow(r *row) error {
	keys := make([]string, len(t.indexes))
	for n, ix := range t.indexes {
		k, ok := t.key(ix, r.vals)
		if !ok {
			continue
		}
		if _, dup := ix.rows[k]; dup {
			return t.uniqueViolation(ix)
		}
		keys[n] = k
	}
	for n, ix := range t.indexes {
		if keys[n] != "" {
			ix.rows[keys[n]] = r
		}
	}
	t.rows = append(t.rows, r)
	return nil
}

// updateRow replaces r's values, keeping indexes right, and records what
// to restore in u.
func (t *table) updateRow(r *row, vals []any, u *undo) error {
	var moved []indexKey
	for _, ix := range t.indexes {
		oldKey, oldOK := t.key(ix, r.vals)
		newKey, newOK := t.key(ix, vals)
		if oldOK == newOK && oldKey == newKey {
			continue
		}
		if newOK {
			if other, dup := ix.rows[newKey]; dup && other != r {
				return t.uniqueViolation(ix)
			}
		}
		moved = append(moved, indexKey{ix, oldKey, oldOK}, indexKey{ix, newKey, newOK})
	}
	for i := 0; i < len(moved); i += 2 {
		if moved[i].set {
			delete(moved[i].ix.rows, moved[i].key)
		}
		if moved[i+1].set {
			moved[i+1].ix.rows[moved[i+1].key] = r
		}
	}
	u.updated = append(u.updated, updatedRow{r: r, old: r.vals, keys: moved})
	r.vals = vals
	return nil
}

// rollback removes the request's inserted rows first, then undoes its
// updates newest first, so that a key an update freed and an insert took
// ends up with its original row.
func (t *table) rollback(u *undo) {
	for _, r := range t.rows[u.rowCount:] {
		t.unindex(r, r.vals)
	}
	clear(t.rows[u.rowCount:])
	t.rows = t.rows[:u.rowCount]
	for i := len(u.updated) - 1; i >= 0; i-- {
		up := u.updated[i]
		for j := 0; j < len(up.keys); j += 2 {
			if nk := up.keys[j+1]; nk.set && nk.ix.rows[nk.key] == up.r {
				delete(nk.ix.rows, nk.key)
			}
			if ok := up.keys[j]; ok.set {
				ok.ix.rows[ok.key] = up.r
			}
		}
		up.r.vals = up.old
	}
}

// unindex removes r's entries from every index.
func (t *table) unindex(r *row, vals []any) {
	for _, ix := range t.indexes {
		if k, ok := t.key(ix, vals); ok && ix.rows[k] == r {
			delete(ix.rows, k)
		}
	}
}

// deleteRows removes the rows for which drop is true.
func (t *table) deleteRows(drop map[*row]bool) {
	kept := t.rows[:0]
	for _, r := range t.rows {
		if !drop[r] {
			kept = append(kept, r)
			continue
		}
		t.unindex(r, r.vals)
	}
	clear(t.rows[len(kept):])
	t.rows = kept
}

func (t *table) uniqueViolation(ix *index) error {
	names := make([]string, len(ix.cols))
	for i, c := range ix.cols {
		names[i] = t.cols[c].Name
	}
	return fmt.Errorf("duplicate key value violates unique constraint on (%s)", strings.Join(names, ", "))
}
