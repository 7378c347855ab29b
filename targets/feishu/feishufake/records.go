package feishufake

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"
)

const maxRows = 500

type insertRequest struct {
	objs       []map[string]any
	columns    []string // nil when the columns parameter is absent
	onConflict []string
	resolution string // "", "merge-duplicates" or "ignore-conflicts"
	missingDef bool
}

func (s *Server) serveInsert(w http.ResponseWriter, r *http.Request, name string) {
	req, err := readInsert(r)
	if err != nil {
		s.fail(w, r, name, err)
		return
	}
	s.mu.Lock()
	var ids []string
	t, ok := s.tables[name]
	if !ok {
		err = fmt.Errorf("table %q not found", name)
	} else {
		ids, err = t.insert(req, time.Now())
		if err == nil {
			s.remember(name, "upsert", req.objs)
		}
	}
	s.mu.Unlock()
	if err != nil {
		s.answer(w, r, name, len(req.objs), http.StatusBadRequest, codeInvalid, "param is invalid: "+err.Error(), nil)
		return
	}
	s.answer(w, r, name, len(req.objs), http.StatusOK, 0, "success", map[string]any{"record_ids": ids})
}

func readInsert(r *http.Request) (insertRequest, error) {
	var req insertRequest
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		return req, fmt.Errorf("Content-Type must be application/json, got %q", ct)
	}
	var body struct {
		Records *string `json:"records"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxRequestBytes)).Decode(&body); err != nil {
		return req, fmt.Errorf("body: %v", err)
	}
	if body.Records == nil {
		return req, errors.New("records is required and must be a string holding a JSON array")
	}
	d := json.NewDecoder(strings.NewReader(*body.Records))
	d.UseNumber()
	var arr []map[string]any
	if err := d.Decode(&arr); err != nil || d.More() {
		return req, fmt.Errorf("records must be a JSON array of objects: %v", err)
	}
	if len(arr) > maxRows {
		return req, fmt.Errorf("at most %d records per request, got %d", maxRows, len(arr))
	}
	for i, o := range arr {
		if o == nil {
			return req, fmt.Errorf("record %d is not an object", i)
		}
	}
	req.objs = arr
	q := r.URL.Query()
	if q.Has("columns") {
		req.columns = strings.Split(q.Get("columns"), ",")
	}
	if oc := q.Get("on_conflict"); oc != "" {
		req.onConflict = strings.Split(oc, ",")
	}
	for _, pref := range strings.Split(r.Header.Get("Prefer"), ",") {
		switch strings.TrimSpace(pref) {
		case "resolution=merge-duplicates":
			req.resolution = "merge-duplicates"
		case "resolution=ignore-conflicts":
			req.resolution = "ignore-conflicts"
		case "missing=default":
			req.missingDef = true
		}
	}
	return req, nil
}

// insert runs PostgREST's INSERT ... ON CONFLICT under s.mu, all or nothing.
func (t *table) insert(req insertRequest, now time.Time) ([]string, error) {
	list, err := t.columnList(req)
	if err != nil {
		return nil, err
	}
	var arbiter *index
	if req.resolution != "" {
		if arbiter, err = t.arbiter(req.onConflict); err != nil {
			return nil, err
		}
	}
	inList := make([]bool, len(t.cols))
	for _, i := range list {
		inList[i] = true
	}
	u := undo{rowCount: len(t.rows)}
	touched := make(map[*row]bool, len(req.objs))
	ids := make([]string, 0, len(req.objs))
	for _, obj := range req.objs {
		id, err := t.insertOne(obj, inList, req, arbiter, touched, &u, now)
		if err != nil {
			// PostgreSQL names neither the row nor (for a value its type
			// refuses) the column: only the value.
			t.rollback(&u)
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// columnList is the INSERT's column list: the columns parameter, or else the
// keys of the objects, which must then all be the same.
func (t *table) columnList(req insertRequest) ([]int, error) {
	names := req.columns
	if names == nil && len(req.objs) > 0 {
		for k := range req.objs[0] {
			names = append(names, k)
		}
		for i, o := range req.objs {
			if len(o) != len(names) {
				return nil, fmt.Errorf("record %d: all object keys must match", i)
			}
			for _, k := range names {
				if _, ok := o[k]; !ok {
					return nil, fmt.Errorf("record %d: all object keys must match", i)
				}
			}
		}
	}
	list := make([]int, 0, len(names))
	for _, n := range names {
		i, ok := t.pos[n]
		if !ok {
			return nil, fmt.Errorf("could not find the %q column of %q", n, t.name)
		}
		list = append(list, i)
	}
	return list, nil
}

// arbiter finds the unique constraint whose columns are exactly on_conflict
// (default: the primary key _id).
func (t *table) arbiter(onConflict []string) (*index, error) {
	want := make([]int, 0, len(onConflict))
	for _, n := range onConflict {
		i, ok := t.pos[strings.TrimSpace(n)]
		if !ok {
			return nil, fmt.Errorf("on_conflict: column %q does not exist", n)
		}
		want = append(want, i)
	}
	if len(want) == 0 {
		want = []int{idPos}
	}
	slices.Sort(want)
	for _, ix := range t.indexes {
		if slices.Equal(slices.Sorted(slices.Values(ix.cols)), want) {
			return ix, nil
		}
	}
	return nil, errors.New("there is no unique or exclusion constraint matching the ON CONFLICT specification")
}

func (t *table) insertOne(obj map[string]any, inList []bool, req insertRequest, arbiter *index, touched map[*row]bool, u *undo, now time.Time) (string, error) {
	vals := make([]any, len(t.cols))
	for i, c := range t.cols {
		v, present := obj[c.Name]
		var err error
		switch {
		case inList[i] && (present || !req.missingDef):
			vals[i], err = coerce(t.kinds[i], v)
		default:
			vals[i], err = t.defaultValue(i, now)
		}
		if err != nil {
			return "", err
		}
	}
	for i, c := range t.cols {
		if !c.AllowNull && vals[i] == nil {
			return "", fmt.Errorf("null value in column %q of relation %q violates not-null constraint", c.Name, t.name)
		}
	}
	if arbiter != nil {
		if k, ok := t.key(arbiter, vals); ok {
			if old, hit := arbiter.rows[k]; hit {
				return t.resolve(old, vals, inList, req, touched, u)
			}
		}
	}
	r := &row{vals: vals}
	if err := t.insertRow(r); err != nil {
		return "", err
	}
	touched[r] = true
	return t.id(r), nil
}

// resolve applies the conflict action to the existing row old: DO UPDATE SET
// each listed column to the proposed value, or DO NOTHING.
func (t *table) resolve(old *row, vals []any, inList []bool, req insertRequest, touched map[*row]bool, u *undo) (string, error) {
	if touched[old] {
		return "", errors.New("ON CONFLICT DO UPDATE command cannot affect row a second time")
	}
	if req.resolution == "ignore-conflicts" {
		return t.id(old), nil
	}
	next := slices.Clone(old.vals)
	for i := range t.cols {
		if inList[i] {
			next[i] = vals[i]
		}
	}
	if err := t.updateRow(old, next, u); err != nil {
		return "", err
	}
	touched[old] = true
	return t.id(old), nil
}

func (t *table) id(r *row) string {
	return fmt.Sprint(r.vals[idPos])
}

func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request, name string) {
	expr := r.URL.Query().Get("filter")
	if expr == "" {
		s.fail(w, r, name, errors.New("filter is required"))
		return
	}
	n, err := parseFilter(expr)
	if err != nil {
		s.fail(w, r, name, err)
		return
	}
	s.mu.Lock()
	deleted := 0
	t, ok := s.tables[name]
	if !ok {
		err = fmt.Errorf("table %q not found", name)
	} else {
		var c *cond
		if c, err = t.compile(n); err == nil {
			drop := make(map[*row]bool)
			rows := t.rows
			if found, ok := t.byIndex(c); ok {
				rows = found
			}
			for _, row := range rows {
				if c.match(row) {
					drop[row] = true
				}
			}
			if s.opts.History {
				gone := make([]map[string]any, 0, len(drop))
				for _, row := range t.rows {
					if drop[row] {
						gone = append(gone, t.object(row))
					}
				}
				s.remember(name, "delete", gone)
			}
			t.deleteRows(drop)
			deleted = len(drop)
		}
	}
	s.mu.Unlock()
	if err != nil {
		s.fail(w, r, name, err)
		return
	}
	s.answer(w, r, name, deleted, http.StatusOK, 0, "success", nil)
}
