package feishufake

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

type columnInfo struct {
	Name         string `json:"name"`
	DataType     string `json:"data_type"`
	IsPrimaryKey bool   `json:"is_primary_key"`
	IsUnique     bool   `json:"is_unique"`
	IsAllowNull  bool   `json:"is_allow_null"`
	IsArray      bool   `json:"is_array"`
	DefaultValue string `json:"default_value"`
}

func (s *Server) serveSchema(w http.ResponseWriter, r *http.Request, name string) {
	s.mu.Lock()
	t, ok := s.tables[name]
	var cols []columnInfo
	if ok {
		for _, c := range t.cols {
			cols = append(cols, columnInfo{
				Name: c.Name, DataType: c.DataType, IsPrimaryKey: c.IsPrimaryKey, IsUnique: c.IsUnique,
				IsAllowNull: c.AllowNull, DefaultValue: c.Default,
			})
		}
	}
	s.mu.Unlock()
	if !ok {
		s.fail(w, r, name, fmt.Errorf("table %q not found", name))
		return
	}
	s.answer(w, r, name, 0, http.StatusOK, 0, "success", map[string]any{"name": name, "columns": cols})
}

// serveList pages through the rows in insertion order; the page token is
// the offset of the next page.
func (s *Server) serveList(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	size, offset := 20, 0
	var err error
	if v := q.Get("page_size"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > maxRows {
			s.fail(w, r, name, fmt.Errorf("page_size must be between 1 and %d", maxRows))
			return
		}
	}
	if v := q.Get("page_token"); v != "" {
		if offset, err = strconv.Atoi(strings.TrimPrefix(v, "offset-")); err != nil || offset < 0 {
			s.fail(w, r, name, errors.New("page_token is invalid"))
			return
		}
	}
	var c *cond
	s.mu.Lock()
	t, ok := s.tables[name]
	var items []map[string]any
	total := 0
	switch {
	case !ok:
		err = fmt.Errorf("table %q not found", name)
	case q.Get("filter") != "":
		var n *node
		if n, err = parseFilter(q.Get("filter")); err == nil {
			c, err = t.compile(n)
		}
	}
	if err == nil {
		for _, row := range t.rows {
			if c != nil && !c.match(row) {
				continue
			}
			if total >= offset && len(items) < size {
				items = append(items, t.object(row))
			}
			total++
		}
	}
	s.mu.Unlock()
	if err != nil {
		s.fail(w, r, name, err)
		return
	}
	b, err := json.Marshal(items)
	if err != nil {
		s.fail(w, r, name, err)
		return
	}
	if items == nil {
		b = []byte("[]")
	}
	data := map[string]any{"items": string(b), "has_more": offset+len(items) < total, "total": total, "page_token": ""}
	if offset+len(items) < total {
		data["page_token"] = "offset-" + strconv.Itoa(offset+len(items))
	}
	s.answer(w, r, name, len(items), http.StatusOK, 0, "success", data)
}
