package gptbotsfake

import (
	"maps"
	"net/http"
	"strings"
)

// PageAnswer is the answer of a page read.
type PageAnswer struct {
	TableInfo TableInfo    `json:"table_info"`
	Records   []PageRecord `json:"records"`
	Total     int          `json:"total"`
}

// TableInfo describes a table and its fields.
type TableInfo struct {
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	FieldCount  int         `json:"field_count"`
	Fields      []FieldInfo `json:"fields"`
}

// FieldInfo is one field as the page answer lists it.
type FieldInfo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Type        string `json:"type"`
	Required    bool   `json:"required"`
	Unique      bool   `json:"unique"`
}

// PageRecord is one stored row.
type PageRecord struct {
	RecordID string         `json:"record_id"`
	Value    map[string]any `json:"value"`
}

type wrapped struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data"`
}

func (s *Server) page(body []byte) answer {
	var req struct {
		TableID  string         `json:"table_id"`
		Page     int            `json:"page"`
		PageSize int            `json:"page_size"`
		Filter   map[string]any `json:"filter"`
		Keyword  string         `json:"keyword"`
	}
	return s.inTable(body, &req, &req.TableID, func(t *table) answer {
		if req.Page < 1 || req.PageSize < 1 || req.PageSize > MaxPageSize {
			return s.invalid(t.id, "page must be at least 1 and page_size 1 to %d", MaxPageSize)
		}
		rows := t.ordered()
		if req.Filter != nil {
			f, key, err := t.filterField(req.Filter)
			if err != nil {
				return s.invalid(t.id, "%v", err)
			}
			r, _, err := t.find(f, key)
			if err != nil {
				return s.invalid(t.id, "%v", err)
			}
			rows = rows[:0]
			if r != nil {
				rows = append(rows, r)
			}
		}
		if req.Keyword != "" {
			rows = t.matching(rows, req.Keyword)
		}
		out := PageAnswer{TableInfo: t.info(), Records: []PageRecord{}, Total: len(rows)}
		for i := (req.Page - 1) * req.PageSize; i < len(rows) && len(out.Records) < req.PageSize; i++ {
			out.Records = append(out.Records, PageRecord{RecordID: rows[i].id, Value: maps.Clone(rows[i].values)})
		}
		var payload any = out
		if s.opts.WrapPage {
			payload = wrapped{Message: "OK", Data: out}
		}
		return answer{status: http.StatusOK, table: t.id, items: len(out.Records), body: payload}
	})
}

// matching keeps the rows with a TEXT value containing keyword.
func (t *table) matching(rows []*row, keyword string) []*row {
	var out []*row
	for _, r := range rows {
		for _, f := range t.fields {
			if s, ok := r.values[f.Name].(string); ok && f.Type == TypeText && strings.Contains(s, keyword) {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

func (t *table) info() TableInfo {
	info := TableInfo{ID: t.id, Name: t.id, FieldCount: len(t.fields), Fields: make([]FieldInfo, len(t.fields))}
	for i, f := range t.fields {
		info.Fields[i] = FieldInfo{Name: f.Name, Description: f.Name, Type: f.Type, Required: f.Required, Unique: f.Unique}
	}
	return info
}
