package feishu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/replicator-cdc/replicator"
)

// column is one entry of the schema call's data.columns.
type column struct {
	Name         string `json:"name"`
	DataType     string `json:"data_type"`
	IsPrimaryKey bool   `json:"is_primary_key"`
	IsUnique     bool   `json:"is_unique"`
	IsAllowNull  bool   `json:"is_allow_null"`
	IsArray      bool   `json:"is_array"`
	DefaultValue string `json:"default_value"`
}

// Prepare reads each table's schema and checks that every mapped column
// exists, that the key is something the API can upsert on, and that no
// unmapped NOT NULL column without a default would make every insert fail.
func (w *Writer) Prepare(ctx context.Context, tables []replicator.TableSpec) error {
	var errs []error
	for i := range tables {
		t := &tables[i]
		data, err := w.do(ctx, call{op: "schema", table: t.Table, method: http.MethodGet, path: "/tables/" + url.PathEscape(t.Table)})
		var rej *rejectError
		if errors.As(err, &rej) {
			errs = append(errs, fmt.Errorf("feishu target %q: table %q (mapped from %s): %v: check that the table exists in workspace %s", w.cfg.Name, t.Table, t.Source, rej.apiError, w.cfg.WorkspaceID))
			continue
		}
		if err != nil {
			return err
		}
		var schema struct {
			Columns []column `json:"columns"`
		}
		if err := json.Unmarshal(data, &schema); err != nil {
			return fmt.Errorf("feishu target %q: table %q: unreadable schema answer: %w", w.cfg.Name, t.Table, err)
		}
		for _, err := range checkTable(t, schema.Columns) {
			errs = append(errs, fmt.Errorf("feishu target %q: %w", w.cfg.Name, err))
		}
	}
	return errors.Join(errs...)
}

func checkTable(t *replicator.TableSpec, cols []column) []error {
	byName := make(map[string]*column, len(cols))
	var pk []string
	for i := range cols {
		byName[cols[i].Name] = &cols[i]
		if cols[i].IsPrimaryKey {
			pk = append(pk, cols[i].Name)
		}
	}
	var errs []error
	for _, name := range t.Columns {
		if byName[name] == nil {
			errs = append(errs, fmt.Errorf("table %q has no column %q (mapped from %s): add the column in the Feishu workspace, or change the mapping's columns", t.Table, name, t.Source))
		}
	}
	if !keyUsable(t.Key, byName, pk) {
		errs = append(errs, fmt.Errorf("table %q: key (%s) mapped from %s is neither a unique column nor the table's primary key (%s), so rows cannot be upserted on it: mark the column unique in the Feishu workspace, or set the mapping's key to a unique column", t.Table, strings.Join(t.Key, ", "), t.Source, strings.Join(pk, ", ")))
	}
	for _, c := range cols {
		if !c.IsAllowNull && c.DefaultValue == "" && !slices.Contains(t.Columns, c.Name) {
			errs = append(errs, fmt.Errorf("table %q: column %q is NOT NULL without a default and not mapped from %s, so every insert would fail: map a source column to it, or allow NULL or give it a default in Feishu", t.Table, c.Name, t.Source))
		}
	}
	return errs
}

// keyUsable: a single column must be unique or the whole primary key; a
// composite key must be exactly the primary key's columns.
func keyUsable(key []string, byName map[string]*column, pk []string) bool {
	if len(key) == 1 {
		c := byName[key[0]]
		return c != nil && (c.IsUnique || (c.IsPrimaryKey && len(pk) == 1))
	}
	return slices.Equal(slices.Sorted(slices.Values(key)), slices.Sorted(slices.Values(pk)))
}

// TargetColumns reads a table's columns: every name, and those an insert
// must carry (NOT NULL without a default). The system column _id is filled
// by the platform, although the schema gives it no default.
func (w *Writer) TargetColumns(ctx context.Context, table string) (columns, required []string, err error) {
	data, err := w.do(ctx, call{op: "schema", table: table, method: http.MethodGet, path: "/tables/" + url.PathEscape(table)})
	if err != nil {
		return nil, nil, err
	}
	var schema struct {
		Columns []column `json:"columns"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		return nil, nil, fmt.Errorf("feishu target %q: table %q: unreadable schema answer: %w", w.cfg.Name, table, err)
	}
	for _, c := range schema.Columns {
		columns = append(columns, c.Name)
		if !c.IsAllowNull && c.DefaultValue == "" && c.Name != "_id" {
			required = append(required, c.Name)
		}
	}
	return columns, required, nil
}
