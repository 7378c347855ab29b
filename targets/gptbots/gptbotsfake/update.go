package gptbotsfake

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
)

// UpdateAnswer is the documented answer of a successful update call.
type UpdateAnswer struct {
	TotalCount   int          `json:"totalCount"`
	SuccessCount int          `json:"success_count"`
	FailCount    int          `json:"fail_count"`
	FailDetail   []FailDetail `json:"fail_detail"`
}

// FailDetail is one failed item: the request data it carried and why.
type FailDetail struct {
	UpsertData UpsertData `json:"upsert_data"`
	FailReason string     `json:"fail_reason"`
}

// UpsertData echoes a failed item: its record_id or filter, and its
// updated_fields as value.
type UpsertData struct {
	RecordID string          `json:"record_id,omitempty"`
	Filter   json.RawMessage `json:"filter,omitempty"`
	Value    json.RawMessage `json:"value"`
}

type updateItem struct {
	recordID string
	filter   Field
	key      any
	fields   map[string]any
	echo     UpsertData
}

func (s *Server) update(body []byte) answer {
	if len(body) > s.opts.MaxBodyBytes {
		return s.invalid("", "request body is %d bytes, more than %d", len(body), s.opts.MaxBodyBytes)
	}
	var req struct {
		TableID    string            `json:"table_id"`
		IsCreate   bool              `json:"is_create"`
		UpdateData []json.RawMessage `json:"update_data"`
	}
	return s.inTable(body, &req, &req.TableID, func(t *table) answer {
		n := len(req.UpdateData)
		if n == 0 || n > MaxUpdateItems {
			return s.invalid(t.id, "update_data must hold 1 to %d items, got %d", MaxUpdateItems, n)
		}
		items := make([]updateItem, n)
		for i, raw := range req.UpdateData {
			it, err := t.parseUpdateItem(raw)
			if err != nil {
				return s.invalid(t.id, "update_data[%d]: %v", i, err)
			}
			items[i] = it
		}
		if msg := s.objection(t, items); msg != "" {
			return s.invalid(t.id, "%s", msg)
		}
		out := UpdateAnswer{TotalCount: n, FailDetail: []FailDetail{}}
		for _, it := range items {
			if reason := s.apply(t, &it, req.IsCreate); reason != "" {
				out.FailDetail = append(out.FailDetail, FailDetail{UpsertData: it.echo, FailReason: reason})
				continue
			}
			out.SuccessCount++
		}
		out.FailCount = len(out.FailDetail)
		return answer{status: http.StatusOK, table: t.id, items: n, body: out}
	})
}

// parseUpdateItem checks what makes the whole request invalid: an item with
// neither record_id nor a valid filter, or without updated_fields.
func (t *table) parseUpdateItem(raw json.RawMessage) (updateItem, error) {
	var in struct {
		RecordID      string          `json:"record_id"`
		Filter        json.RawMessage `json:"filter"`
		UpdatedFields json.RawMessage `json:"updated_fields"`
	}
	if err := decodeJSON(raw, &in); err != nil {
		return updateItem{}, err
	}
	it := updateItem{recordID: in.RecordID, echo: UpsertData{RecordID: in.RecordID, Value: in.UpdatedFields}}
	if err := decodeJSON(in.UpdatedFields, &it.fields); err != nil || it.fields == nil {
		return updateItem{}, fmt.Errorf("updated_fields must be an object")
	}
	if in.RecordID != "" {
		return it, nil
	}
	var filter map[string]any
	if err := decodeJSON(in.Filter, &filter); err != nil || filter == nil {
		return updateItem{}, fmt.Errorf("record_id or filter is required")
	}
	f, key, err := t.filterField(filter)
	if err != nil {
		return updateItem{}, err
	}
	it.filter, it.key, it.echo.Filter = f, key, in.Filter
	return it, nil
}

// apply performs one item atomically and returns why it failed, or "".
func (s *Server) apply(t *table, it *updateItem, create bool) string {
	var target *row
	next := map[string]any{}
	if it.recordID != "" {
		target = t.rows[it.recordID]
	} else {
		r, key, err := t.find(it.filter, it.key)
		if err != nil {
			return err.Error()
		}
		target = r
		next[it.filter.Name] = key
	}
	switch {
	case target != nil:
		next = maps.Clone(target.values)
	case !create:
		return "record not found"
	}
	for _, name := range slices.Sorted(maps.Keys(it.fields)) {
		f, ok := t.byName[name]
		if !ok {
			return fmt.Sprintf("field %q does not exist", name)
		}
		v, err := coerce(f.Type, it.fields[name])
		if err != nil {
			return fmt.Sprintf("field %q: %v", name, err)
		}
		if v == nil {
			delete(next, name)
			continue
		}
		if s.reject != nil {
			if reason := s.reject(t.id, name, v); reason != "" {
				return reason
			}
		}
		next[name] = v
	}
	if reason := t.check(target, next); reason != "" {
		return reason
	}
	if target == nil {
		s.nextID++
		target = &row{id: fmt.Sprintf("%024x", s.nextID), seq: s.nextID}
	}
	t.put(target, next)
	return ""
}

// check enforces unique and required fields on a row's proposed values.
func (t *table) check(self *row, values map[string]any) string {
	for _, f := range t.fields {
		v, ok := values[f.Name]
		switch {
		case !ok && f.Required:
			return fmt.Sprintf("field %q is required", f.Name)
		case !ok || !f.Unique:
		case textLen(v) > MaxUniqueChars:
			return fmt.Sprintf("unique field %q: value longer than %d characters", f.Name, MaxUniqueChars)
		case t.unique[f.Name][v] != nil && t.unique[f.Name][v] != self:
			return fmt.Sprintf("unique field %q: value %s already exists", f.Name, display(v))
		}
	}
	return ""
}

func display(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

// objection asks the SetInvalid hook about every value the items carry.
func (s *Server) objection(t *table, items []updateItem) string {
	if s.invalidHook == nil {
		return ""
	}
	for _, it := range items {
		for name, raw := range it.fields {
			f, ok := t.byName[name]
			if !ok {
				continue
			}
			if v, err := coerce(f.Type, raw); err == nil && v != nil {
				if msg := s.invalidHook(t.id, name, v); msg != "" {
					return msg
				}
			}
		}
	}
	return ""
}
