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

// Prepare runs Preflight and logs its warnings: only what is certain to
// fail stops the daemon.
func (w *Writer) Prepare(ctx context.Context, tables []replicator.TableSpec) error {
	warnings, err := w.Preflight(ctx, tables)
	for _, msg := range warnings {
		w.log.Warn("feishu preflight: " + msg)
	}
	return err
}

// Preflight reads each table's schema. Its error lists what certainly
// fails (a missing table, a mapped or key column the table does not have);
// the warnings list what the schema answer cannot decide, because it does
// not show composite unique constraints, unique indexes made outside the
// column settings, identity columns or triggers. A doubtful key is settled
// by the first upsert: without a matching unique constraint it stops the
// daemon, naming the fix.
func (w *Writer) Preflight(ctx context.Context, tables []replicator.TableSpec) ([]string, error) {
	var warnings []string
	var errs []error
	for i := range tables {
		t := &tables[i]
		cols, err := w.readColumns(ctx, t.Table)
		var rej *rejectError
		if errors.As(err, &rej) {
			errs = append(errs, fmt.Errorf("feishu target %q: table %q (mapped from %s): %v: check that the table exists in workspace %s", w.cfg.Name, t.Table, t.Source, rej.apiError, w.cfg.WorkspaceID))
			continue
		}
		if err != nil {
			return warnings, err
		}
		w.schemas.keep(t.Table, cols)
		problems, doubts := checkTable(t, cols)
		for _, err := range problems {
			errs = append(errs, fmt.Errorf("feishu target %q: %w", w.cfg.Name, err))
		}
		warnings = append(warnings, doubts...)
	}
	return warnings, errors.Join(errs...)
}

// systemColumn reports whether the platform fills c itself: the system
// primary key "_id" that every aPaaS table has, recognized by its name, or
// by being the table's only primary key column and a uuid. The schema answer
// gives it no default, yet an insert that leaves it out succeeds.
func systemColumn(c *column, pkColumns int) bool {
	return c.Name == systemID || (c.IsPrimaryKey && pkColumns == 1 && c.DataType == "uuid")
}

const systemID = "_id"

// checkTable returns the problems that make every write fail, and the
// doubts the schema answer cannot settle.
func checkTable(t *replicator.TableSpec, cols []column) (problems []error, doubts []string) {
	byName := make(map[string]*column, len(cols))
	var pk []string
	for i := range cols {
		byName[cols[i].Name] = &cols[i]
		if cols[i].IsPrimaryKey {
			pk = append(pk, cols[i].Name)
		}
	}
	for _, name := range t.Columns {
		if byName[name] == nil {
			problems = append(problems, fmt.Errorf("table %q has no column %q (mapped from %s): add the column in the Feishu workspace, or change the mapping's columns", t.Table, name, t.Source))
		}
	}
	for _, name := range t.Key {
		if byName[name] == nil && !slices.Contains(t.Columns, name) {
			problems = append(problems, fmt.Errorf("table %q has no column %q, a column of the key mapped from %s: add the column in the Feishu workspace, or change the mapping's key", t.Table, name, t.Source))
		}
	}
	if len(problems) > 0 {
		return problems, nil
	}
	if d := keyDoubt(t, byName, pk); d != "" {
		doubts = append(doubts, d)
	}
	var unfilled []string
	for i := range cols {
		c := &cols[i]
		if !c.IsAllowNull && c.DefaultValue == "" && !slices.Contains(t.Columns, c.Name) && !systemColumn(c, len(pk)) {
			unfilled = append(unfilled, c.Name)
		}
	}
	if len(unfilled) > 0 {
		doubts = append(doubts, fmt.Sprintf("table %q: column(s) %s are NOT NULL, have no default in the schema answer and are not mapped from %s: unless something the schema answer does not show fills them (an identity column, a trigger), Feishu will refuse every upsert of the table and each row goes to the dead letters: map source columns to them, or allow NULL or give them a default in Feishu",
			t.Table, strings.Join(unfilled, ", "), t.Source))
	}
	return nil, doubts
}

// keyDoubt says why the key may not be one the API can upsert on, or "" when
// the schema answer shows that it is: a unique column, or exactly the
// primary key. The schema answer shows no composite unique constraint and
// may not show a unique index made outside the column settings, so anything
// else is a doubt, not a refusal.
func keyDoubt(t *replicator.TableSpec, byName map[string]*column, pk []string) string {
	if len(t.Key) == 1 && byName[t.Key[0]].IsUnique {
		return ""
	}
	if slices.Equal(slices.Sorted(slices.Values(t.Key)), slices.Sorted(slices.Values(pk))) {
		return ""
	}
	key := strings.Join(t.Key, ", ")
	why := fmt.Sprintf("column %q is not marked unique in the schema answer", t.Key[0])
	if len(t.Key) > 1 {
		why = "the schema answer cannot show composite unique constraints"
	}
	return fmt.Sprintf("table %q: the key (%s) mapped from %s is not verified unique (%s): upserts need a unique constraint on exactly (%s); without one the first upsert stops the daemon, and the fix is to create that constraint in the Feishu workspace or to change the mapping's key",
		t.Table, key, t.Source, why, key)
}

// TargetColumns reads a table's columns: every name, and those an insert
// must carry (NOT NULL without a default, except the system key the
// platform fills).
func (w *Writer) TargetColumns(ctx context.Context, table string) (columns, required []string, err error) {
	cols, err := w.readColumns(ctx, table)
	if err != nil {
		return nil, nil, err
	}
	pk := 0
	for _, c := range cols {
		if c.IsPrimaryKey {
			pk++
		}
	}
	for i := range cols {
		c := &cols[i]
		columns = append(columns, c.Name)
		if !c.IsAllowNull && c.DefaultValue == "" && !systemColumn(c, pk) {
			required = append(required, c.Name)
		}
	}
	return columns, required, nil
}

// readColumns reads a table's columns from the schema call.
func (w *Writer) readColumns(ctx context.Context, table string) ([]column, error) {
	data, err := w.do(ctx, call{op: "schema", table: table, method: http.MethodGet, path: "/tables/" + url.PathEscape(table)})
	if err != nil {
		return nil, err
	}
	var schema struct {
		Columns []column `json:"columns"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		return nil, fmt.Errorf("feishu target %q: table %q: unreadable schema answer: %w", w.cfg.Name, table, err)
	}
	return schema.Columns, nil
}
