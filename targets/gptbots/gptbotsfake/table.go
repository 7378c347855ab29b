package gptbotsfake

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Field types.
const (
	TypeText     = "TEXT"
	TypeInt      = "INT"
	TypeFloat    = "FLOAT"
	TypeDateTime = "DATETIME"
	TypeBoolean  = "BOOLEAN"
)

// Field declares one column of a table.
type Field struct {
	Name string
	// Type is TypeText, TypeInt, TypeFloat, TypeDateTime or TypeBoolean.
	Type   string
	Unique bool
	// Required fields must hold a value once an item is applied.
	Required bool
}

// RejectFunc is asked about every coerced value of updated_fields; a
// non-empty answer fails that item with the answer as fail_reason. It runs
// with the server locked and must not call the server.
type RejectFunc func(tableID, field string, value any) string

type table struct {
	id       string
	fields   []Field
	byName   map[string]Field
	rows     map[string]*row
	unique   map[string]map[any]*row
	noAccess bool
}

type row struct {
	id     string
	seq    uint64
	values map[string]any
}

// AddTable creates an empty table, replacing any table with the same id.
func (s *Server) AddTable(tableID string, fields []Field) error {
	if tableID == "" {
		return errors.New("gptbotsfake: empty table id")
	}
	t := &table{
		id:     tableID,
		fields: slices.Clone(fields),
		byName: make(map[string]Field, len(fields)),
		rows:   make(map[string]*row),
		unique: make(map[string]map[any]*row),
	}
	for _, f := range fields {
		switch f.Type {
		case TypeText, TypeInt, TypeFloat, TypeDateTime, TypeBoolean:
		default:
			return fmt.Errorf("gptbotsfake: field %q has unknown type %q", f.Name, f.Type)
		}
		if _, dup := t.byName[f.Name]; dup || f.Name == "" {
			return fmt.Errorf("gptbotsfake: field name %q is empty or repeated", f.Name)
		}
		t.byName[f.Name] = f
		if f.Unique {
			t.unique[f.Name] = make(map[any]*row)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tables[tableID] = t
	return nil
}

// SetAccess makes calls on the table answer 403131 (no access) until it is
// allowed again.
func (s *Server) SetAccess(tableID string, allowed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.tables[tableID]; t != nil {
		t.noAccess = !allowed
	}
}

// SetReject installs a hook that fails items carrying certain values; nil
// removes it.
func (s *Server) SetReject(f RejectFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = f
}

// SetInvalid installs a hook that makes a whole update invalid (40000, with
// the hook's answer as message) when any item carries a value it objects
// to, the way an API that validates requests up front would; nil removes
// it.
func (s *Server) SetInvalid(f RejectFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidHook = f
}

// DropTable deletes a table, so that calls naming it answer 403106.
func (s *Server) DropTable(tableID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tables, tableID)
}

// Rows returns copies of a table's rows in insertion order, as stored: int64
// for INT, json.Number for FLOAT, bool for BOOLEAN, string for TEXT and for
// DATETIME ("YYYY-MM-DD HH:MM:SS"). A field without a value is absent.
func (s *Server) Rows(tableID string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tables[tableID]
	if t == nil {
		return nil
	}
	out := make([]map[string]any, 0, len(t.rows))
	for _, r := range t.ordered() {
		out = append(out, maps.Clone(r.values))
	}
	return out
}

// inTable starts a call the way every call starts: it decodes the body into
// req, whose table_id field tableID points to, and runs fn under s.mu on the
// table req names. A body that does not decode or names no table, and a
// table that is missing or refused to the key, are answered without fn.
func (s *Server) inTable(body []byte, req any, tableID *string, fn func(*table) answer) answer {
	if err := decodeJSON(body, req); err != nil {
		return s.invalid("", "%v", err)
	}
	if *tableID == "" {
		return s.invalid("", "table_id is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, refused := s.lookup(*tableID)
	if refused != nil {
		return *refused
	}
	return fn(t)
}

// lookup resolves a table id to a table or the answer refusing it.
func (s *Server) lookup(tableID string) (*table, *answer) {
	t := s.tables[tableID]
	if t == nil {
		a := s.coded(CodeTableNotFound, tableID, "table %s not found", tableID)
		return nil, &a
	}
	if t.noAccess {
		a := s.coded(CodeNoAccess, tableID, "no access to table %s", tableID)
		return nil, &a
	}
	return t, nil
}

func (t *table) ordered() []*row {
	rows := slices.Collect(maps.Values(t.rows))
	slices.SortFunc(rows, func(a, b *row) int { return cmp.Compare(a.seq, b.seq) })
	return rows
}

// filterField checks a filter the way the API does: exactly one field, and
// that field declared unique.
func (t *table) filterField(filter map[string]any) (Field, any, error) {
	if len(filter) != 1 {
		return Field{}, nil, fmt.Errorf("filter must name exactly one field, got %d", len(filter))
	}
	var name string
	var v any
	for name, v = range filter {
	}
	f, ok := t.byName[name]
	if !ok {
		return Field{}, nil, fmt.Errorf("filter field %q does not exist", name)
	}
	if !f.Unique {
		return Field{}, nil, fmt.Errorf("filter field %q is not unique", name)
	}
	return f, v, nil
}

// find returns the row whose unique field holds v, which is coerced first.
func (t *table) find(f Field, raw any) (*row, any, error) {
	v, err := coerce(f.Type, raw)
	if err != nil {
		return nil, nil, fmt.Errorf("filter field %q: %w", f.Name, err)
	}
	if v == nil {
		return nil, nil, fmt.Errorf("filter field %q: null value", f.Name)
	}
	return t.unique[f.Name][v], v, nil
}

// put stores values as the row's new state, keeping the unique indexes.
func (t *table) put(r *row, values map[string]any) {
	for name, idx := range t.unique {
		if old, ok := r.values[name]; ok && idx[old] == r {
			delete(idx, old)
		}
		if v, ok := values[name]; ok {
			idx[v] = r
		}
	}
	r.values = values
	t.rows[r.id] = r
}

func (t *table) remove(r *row) {
	for name, idx := range t.unique {
		if v, ok := r.values[name]; ok && idx[v] == r {
			delete(idx, v)
		}
	}
	delete(t.rows, r.id)
}
