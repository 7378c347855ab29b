package gptbotsfake

import (
	"fmt"
	"maps"
)

// The edits below change a table the way a person in GPTBots' web page
// would: outside the API, its auth and its rate limit. Tests use them to
// make a mirror drift. Values are coerced by the field types; unique fields
// hold. A row is named by a unique field and its value.

// DeleteRow removes the row whose unique field holds value.
func (s *Server) DeleteRow(tableID, field string, value any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, r, err := s.edited(tableID, field, value)
	if err != nil {
		return err
	}
	t.remove(r)
	return nil
}

// UpdateRow sets fields of the row whose unique field holds value.
func (s *Server) UpdateRow(tableID, field string, value any, values map[string]any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, r, err := s.edited(tableID, field, value)
	if err != nil {
		return err
	}
	next := maps.Clone(r.values)
	if err := t.coerceInto(next, values); err != nil {
		return err
	}
	if reason := t.check(r, next); reason != "" {
		return fmt.Errorf("gptbotsfake: %s", reason)
	}
	t.put(r, next)
	return nil
}

// InsertRow adds a row under a new record id.
func (s *Server) InsertRow(tableID string, values map[string]any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, refused := s.lookup(tableID)
	if refused != nil {
		return fmt.Errorf("gptbotsfake: table %s: %v", tableID, refused.body)
	}
	next := map[string]any{}
	if err := t.coerceInto(next, values); err != nil {
		return err
	}
	if reason := t.check(nil, next); reason != "" {
		return fmt.Errorf("gptbotsfake: %s", reason)
	}
	s.nextID++
	t.put(&row{id: fmt.Sprintf("%024x", s.nextID), seq: s.nextID}, next)
	return nil
}

func (t *table) coerceInto(dst, values map[string]any) error {
	for name, raw := range values {
		f, ok := t.byName[name]
		if !ok {
			return fmt.Errorf("gptbotsfake: field %q does not exist", name)
		}
		v, err := coerce(f.Type, raw)
		if err != nil {
			return fmt.Errorf("gptbotsfake: field %q: %w", name, err)
		}
		if v == nil {
			delete(dst, name)
			continue
		}
		dst[name] = v
	}
	return nil
}

func (s *Server) edited(tableID, field string, value any) (*table, *row, error) {
	t, refused := s.lookup(tableID)
	if refused != nil {
		return nil, nil, fmt.Errorf("gptbotsfake: table %s: %v", tableID, refused.body)
	}
	f, ok := t.byName[field]
	if !ok || !f.Unique {
		return nil, nil, fmt.Errorf("gptbotsfake: field %q is not a unique field of table %s", field, tableID)
	}
	r, _, err := t.find(f, value)
	if err != nil {
		return nil, nil, err
	}
	if r == nil {
		return nil, nil, fmt.Errorf("gptbotsfake: no row with %s = %v", field, value)
	}
	return t, r, nil
}
