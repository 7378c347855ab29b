package feishufake

import (
	"fmt"
	"slices"
	"time"
)

// The edits below change a table the way a person in the table's web page
// would: outside the API, its auth and its rate limit. Tests use them to
// make a mirror drift. Values are coerced by the column types as an insert
// coerces them; unique constraints hold.

// DeleteRows removes the rows that filter (the records API's filter syntax)
// matches and returns how many.
func (s *Server) DeleteRows(name, filter string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, c, err := s.edited(name, filter)
	if err != nil {
		return 0, err
	}
	drop := make(map[*row]bool)
	for _, r := range t.rows {
		if c.match(r) {
			drop[r] = true
		}
	}
	t.deleteRows(drop)
	return len(drop), nil
}

// UpdateRows sets the given columns of the rows filter matches and returns
// how many.
func (s *Server) UpdateRows(name, filter string, values map[string]any) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, c, err := s.edited(name, filter)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range t.rows {
		if !c.match(r) {
			continue
		}
		next := slices.Clone(r.vals)
		for col, v := range values {
			i, ok := t.pos[col]
			if !ok {
				return n, fmt.Errorf("feishufake: table %s has no column %s", name, col)
			}
			if next[i], err = coerce(t.kinds[i], v); err != nil {
				return n, err
			}
		}
		if err := t.updateRow(r, next, &undo{}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// InsertRow adds a row; columns it leaves out take their defaults.
func (s *Server) InsertRow(name string, values map[string]any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tables[name]
	if !ok {
		return fmt.Errorf("feishufake: table %q not found", name)
	}
	vals := make([]any, len(t.cols))
	for i, c := range t.cols {
		var err error
		if v, given := values[c.Name]; given {
			vals[i], err = coerce(t.kinds[i], v)
		} else {
			vals[i], err = t.defaultValue(i, time.Now())
		}
		if err != nil {
			return err
		}
	}
	return t.insertRow(&row{vals: vals})
}

func (s *Server) edited(name, filter string) (*table, *cond, error) {
	t, ok := s.tables[name]
	if !ok {
		return nil, nil, fmt.Errorf("feishufake: table %q not found", name)
	}
	n, err := parseFilter(filter)
	if err != nil {
		return nil, nil, err
	}
	c, err := t.compile(n)
	return t, c, err
}
