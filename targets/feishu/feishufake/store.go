package feishufake

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Column describes a table column the way the schema call reports it.
type Column struct {
	Name string
	// DataType is a PostgreSQL type name ("bigint", "text", "numeric",
	// "timestamptz", "jsonb", ...). Types the fake does not know are stored
	// as text.
	DataType     string
	IsPrimaryKey bool
	IsUnique     bool
	AllowNull    bool
	// Default is the column default in the column type's text form, "" for
	// none.
	Default string
}

// idColumn is the system column every aPaaS table has; record_ids are its values.
const idColumn = "_id"

type row struct {
	vals []any // by column position
}

// index is one unique constraint: the primary key or a unique column.
type index struct {
	cols []int
	rows map[string]*row
}

type table struct {
	name    string
	cols    []Column
	kinds   []kind
	pos     map[string]int
	pk      []int
	indexes []*index
	rows    []*row
	nextID  int
}

// AddTable creates (or replaces) a table. Unless a column is named "_id", a
// uuid "_id" column is added; it is the primary key when no column is
// marked IsPrimaryKey, and unique otherwise.
func (s *Server) AddTable(name string, cols []Column) error {
	t := &table{name: name, pos: make(map[string]int)}
	hasID := false
	hasPK := false
	for _, c := range cols {
		hasID = hasID || c.Name == idColumn
		hasPK = hasPK || c.IsPrimaryKey
	}
	if !hasID {
		cols = append([]Column{{Name: idColumn, DataType: "uuid", IsPrimaryKey: !hasPK, IsUnique: hasPK, Default: "gen_random_uuid()"}}, cols...)
	}
	for i, c := range cols {
		if c.Name == "" {
			return errors.New("feishufake: column without a name")
		}
		if _, dup := t.pos[c.Name]; dup {
			return fmt.Errorf("feishufake: table %s: column %s declared twice", name, c.Name)
		}
		if c.IsPrimaryKey {
			c.AllowNull = false
			t.pk = append(t.pk, i)
		}
		t.pos[c.Name] = i
		t.cols = append(t.cols, c)
		t.kinds = append(t.kinds, kindOf(c.DataType))
		if c.IsUnique && !c.IsPrimaryKey {
			t.indexes = append(t.indexes, &index{cols: []int{i}, rows: make(map[string]*row)})
		}
	}
	t.indexes = append(t.indexes, &index{cols: t.pk, rows: make(map[string]*row)})
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
	c := t.cols[i]
	switch c.Default {
	case "":
		return nil, nil
	case "gen_random_uuid()":
		t.nextID++
		return fmt.Sprintf("%08x-0000-4000-8000-%012x", now.Unix()&0xffffffff, t.nextID), nil
	}
	return parseText(t.kinds[i], c.Default)
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
