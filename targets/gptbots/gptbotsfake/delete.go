package gptbotsfake

import (
	"net/http"
)

func (s *Server) delete(body []byte) answer {
	var req struct {
		TableID    string `json:"table_id"`
		DeleteData []struct {
			RecordID string         `json:"record_id"`
			Filter   map[string]any `json:"filter"`
		} `json:"delete_data"`
	}
	return s.inTable(body, &req, &req.TableID, func(t *table) answer {
		n := len(req.DeleteData)
		if n == 0 || n > MaxDeleteItems {
			return s.invalid(t.id, "delete_data must hold 1 to %d items, got %d", MaxDeleteItems, n)
		}
		// The answer has no per-item result, so every item is checked before
		// any is applied.
		doomed := make([]*row, 0, n)
		for i, d := range req.DeleteData {
			if d.RecordID != "" {
				doomed = append(doomed, t.rows[d.RecordID])
				continue
			}
			if d.Filter == nil {
				return s.invalid(t.id, "delete_data[%d]: record_id or filter is required", i)
			}
			f, key, err := t.filterField(d.Filter)
			if err != nil {
				return s.invalid(t.id, "delete_data[%d]: %v", i, err)
			}
			r, _, err := t.find(f, key)
			if err != nil {
				return s.invalid(t.id, "delete_data[%d]: %v", i, err)
			}
			doomed = append(doomed, r)
		}
		for _, r := range doomed {
			if r != nil && t.rows[r.id] == r {
				t.remove(r)
			}
		}
		return answer{status: http.StatusOK, table: t.id, items: n, body: apiError{0, "OK"}}
	})
}
