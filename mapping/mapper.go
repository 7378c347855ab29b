package mapping

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/replicator-cdc/replicator"
)

// Fetcher reads a row's current values from the source by its key, in the
// relation's column order; found is false when the row no longer exists.
type Fetcher func(ctx context.Context, rel *replicator.Relation, keyColumns []string, key [][]byte) (cells []replicator.Cell, found bool, err error)

// Table is a rule compiled against the relation's current shape.
type Table struct {
	Rule *Rule
	Spec replicator.TableSpec

	// LeftOut are source columns a copy-every-column rule leaves out
	// because the target table lacks them.
	LeftOut []string

	rel    *replicator.Relation
	fields []fieldPlan // one per relation column
	keyIdx []int       // relation column index of each key column, in key order
	mapped int         // columns with a target
}

type fieldPlan struct {
	target   string // "" when the column is not mapped
	required bool   // the target column must be in every insert
	enc      encoder
}

// Compile builds the plan for rel's columns, resolving each column's type
// once (types may be nil: built-in types only). A listed column the
// relation lacks (renamed or dropped) is an error unless the rule's
// missing-column policy is skip; under a copy-every-column rule, columns
// come and go with the relation, and one the target table lacks is left
// out. A missing key column is an error.
func Compile(rule *Rule, rel *replicator.Relation, types Types, logger *slog.Logger) (*Table, error) {
	return compile(rule, rel, types, logger, nil)
}

// compile is Compile; the listed columns in olderThan are known to exist
// in the source table now, so a relation without them describes older rows.
func compile(rule *Rule, rel *replicator.Relation, types Types, logger *slog.Logger, olderThan map[string]bool) (*Table, error) {
	t := &Table{Rule: rule, Spec: rule.Spec(), rel: rel, fields: make([]fieldPlan, len(rel.Columns))}
	present := make(map[string]bool, len(rel.Columns))
	for i, col := range rel.Columns {
		present[col.Name] = true
		c, ok := rule.column(col.Name)
		if !ok {
			if rule.AllColumns {
				t.LeftOut = append(t.LeftOut, col.Name)
			}
			continue
		}
		vt, err := resolveType(types, col.TypeOID)
		if err != nil {
			return nil, fmt.Errorf("mapping %s: column %s: %w", rule.Source, col.Name, err)
		}
		if err := checkFormat(c.Format, vt); err != nil {
			return nil, fmt.Errorf("mapping %s: column %s: %w", rule.Source, col.Name, err)
		}
		t.fields[i] = fieldPlan{target: c.Target, required: rule.Required[c.Target], enc: encoder{t: vt, format: c.Format}}
		t.mapped++
	}
	if len(t.LeftOut) > 0 {
		logger.Warn("source columns are not in the target table; leaving them out (add them to the target table and restart to copy them)",
			"table", rule.Source, "target_table", rule.Table, "columns", strings.Join(t.LeftOut, ", "))
	}
	for _, c := range rule.Columns {
		switch {
		case present[c.Source]:
		case rule.AllColumns:
			logger.Warn("column is no longer in the source table (renamed or dropped); its target column is no longer updated", "table", rule.Source, "column", c.Source)
		case olderThan[c.Source]:
			logger.Info("changes from before mapped column was added or renamed; leaving it out of them", "table", rule.Source, "column", c.Source)
		case rule.OnMissingColumn == MissingSkip:
			logger.Warn("mapped column is not in the source table (renamed or dropped); on_missing_column: skip leaves it out, so its target column is no longer updated",
				"table", rule.Source, "column", c.Source, "target_column", c.Target)
		default:
			return nil, &MissingColumn{Source: rule.Source, Column: c.Source, Target: c.Target}
		}
	}
	for _, k := range rule.Key {
		idx := -1
		for i, col := range rel.Columns {
			if col.Name == k {
				idx = i
			}
		}
		if idx < 0 {
			return nil, fmt.Errorf("mapping %s: key column %s is not in the source table", rule.Source, k)
		}
		if t.fields[idx].target == "" {
			return nil, fmt.Errorf("mapping %s: key column %s is not mapped", rule.Source, k)
		}
		t.keyIdx = append(t.keyIdx, idx)
	}
	return t, nil
}

// MissingColumn is a column the mapping lists that is not in the source
// table; its message says how to go on.
type MissingColumn struct{ Source, Column, Target string }

func (e *MissingColumn) Error() string {
	return fmt.Sprintf("mapping %s: column %s (written to target column %s) is not in the source table: it was renamed or dropped. "+
		"Rename it back, or change the mapping's columns to its new name (or remove it), or set on_missing_column: skip in the mapping to go on without it; then restart",
		e.Source, e.Column, e.Target)
}

// Relation is the relation the table was compiled for.
func (t *Table) Relation() *replicator.Relation { return t.rel }

// Mapped reports whether the relation's column i has a target column: a
// copy reads only those.
func (t *Table) Mapped(i int) bool { return i < len(t.fields) && t.fields[i].target != "" }

// KeyColumns are the source key columns.
func (t *Table) KeyColumns() []string { return t.Rule.Key }

// Upsert maps a whole or partial row (unchanged cells are left out). A value
// that cannot be encoded is left out too and listed in the record's
// Rejected; a key that cannot be encoded is a *RowError.
func (t *Table) Upsert(cells []replicator.Cell, lsn replicator.LSN) (replicator.Record, error) {
	if len(cells) != len(t.fields) {
		return replicator.Record{}, fmt.Errorf("mapping %s: row has %d columns, relation has %d", t.Rule.Source, len(cells), len(t.fields))
	}
	// Key and fields share one allocation, and so do transcoded values.
	buf := make([]replicator.Field, len(t.keyIdx), len(t.keyIdx)+t.mapped)
	fields := buf[len(t.keyIdx):]
	arena := t.arena(cells)
	var rejected []replicator.ValueRejection
	values := 0 // bytes of the values, which Size charges as such
	for i, c := range cells {
		p := &t.fields[i]
		if p.target == "" || c.State == replicator.CellUnchanged {
			continue
		}
		v, err := cellValue(p, c, &arena)
		if err != nil {
			rejected = append(rejected, t.rejectValue(i, c, err))
			continue
		}
		if len(v.Raw) > 0 && len(c.Data) > 0 && &v.Raw[0] == &c.Data[0] {
			// The source's text as it is: the record must own it (own.go).
			v.Raw = arena.take(v.Raw)
		}
		values += len(v.Raw)
		fields = append(fields, replicator.Field{Name: p.target, Value: v})
	}
	key := buf[:len(t.keyIdx):len(t.keyIdx)]
	if err := t.fillKey(key, cells); err != nil {
		// A rejected row keeps its values, for the dead-letter file.
		var row *RowError
		if errors.As(err, &row) {
			row.Rejection.Record.Fields = fields
		}
		return replicator.Record{}, rowOp(err, replicator.OpUpsert, lsn)
	}
	// The arena's room the values leave unused (its estimate's slack, and
	// a value written on the way to another) is held all the same.
	rec := replicator.Record{Op: replicator.OpUpsert, Key: key, Fields: fields, LSN: lsn, Rejected: rejected, Spare: max(arena.held-values, 0)}
	ownKey(&rec)
	return rec, nil
}

// Delete maps the removal of the row whose key cells are in cells,
// following the rule's delete policy; ok is false when the policy ignores it.
func (t *Table) Delete(cells []replicator.Cell, lsn replicator.LSN) (rec replicator.Record, ok bool, err error) {
	if t.Rule.OnDelete == DeleteIgnore {
		return replicator.Record{}, false, nil
	}
	// An old tuple sends NULL for a column outside the replica identity:
	// the key was not sent, which is not a NULL key.
	for _, idx := range t.keyIdx {
		if idx < len(cells) && cells[idx].State == replicator.CellNull && !t.rel.Columns[idx].Key {
			return replicator.Record{}, false, fmt.Errorf("mapping %s: key column %s: %w", t.Rule.Source, t.rel.Columns[idx].Name, errKeyUnavailable)
		}
	}
	key, err := t.key(cells)
	if err != nil {
		return replicator.Record{}, false, rowOp(err, replicator.OpDelete, lsn)
	}
	if t.Rule.OnDelete == DeleteSoft {
		fields := append(append(make([]replicator.Field, 0, len(key)+1), key...),
			replicator.Field{Name: t.Rule.SoftColumn, Value: replicator.Value{Kind: replicator.KindBool, Raw: rawTrue}})
		rec = replicator.Record{Op: replicator.OpUpsert, Key: key, Fields: fields, LSN: lsn}
	} else {
		rec = replicator.Record{Op: replicator.OpDelete, Key: key, LSN: lsn}
	}
	own(&rec)
	return rec, true, nil
}

var errKeyUnavailable = errors.New("key column value not sent: the table's replica identity must include the key (ALTER TABLE … REPLICA IDENTITY FULL, or make the key the primary key)")

func (t *Table) key(cells []replicator.Cell) ([]replicator.Field, error) {
	key := make([]replicator.Field, len(t.keyIdx))
	if err := t.fillKey(key, cells); err != nil {
		return nil, err
	}
	return key, nil
}

func (t *Table) fillKey(key []replicator.Field, cells []replicator.Cell) error {
	for i, idx := range t.keyIdx {
		if idx >= len(cells) {
			return fmt.Errorf("mapping %s: %w", t.Rule.Source, errKeyUnavailable)
		}
		c := cells[idx]
		if c.State == replicator.CellNull {
			return t.nullKey(idx, cells)
		}
		if c.State != replicator.CellText {
			return fmt.Errorf("mapping %s: key column %s: %w", t.Rule.Source, t.rel.Columns[idx].Name, errKeyUnavailable)
		}
		v, err := cellValue(&t.fields[idx], c, nil)
		if err != nil {
			return t.rowError(idx, cells, err)
		}
		key[i] = replicator.Field{Name: t.fields[idx].target, Value: v}
	}
	return nil
}

// KeyText returns a copy of the source text of the key cells, for fetching
// a row or resuming a copy after it; it keeps nothing of the row alive.
func (t *Table) KeyText(cells []replicator.Cell) [][]byte {
	out := make([][]byte, len(t.keyIdx))
	for i, idx := range t.keyIdx {
		if idx < len(cells) && cells[idx].Data != nil {
			out[i] = bytes.Clone(cells[idx].Data)
		}
	}
	return out
}

// KeyChanged reports whether old (an update's old key or row) addresses a
// different row than new.
func (t *Table) KeyChanged(old, new []replicator.Cell) bool {
	for _, idx := range t.keyIdx {
		if idx >= len(old) || idx >= len(new) {
			return true
		}
		o, n := old[idx], new[idx]
		if n.State == replicator.CellUnchanged {
			continue
		}
		if o.State != n.State || !bytes.Equal(o.Data, n.Data) {
			return true
		}
	}
	return false
}

// HasUnchanged reports whether a mapped column of the row was not sent.
func (t *Table) HasUnchanged(cells []replicator.Cell) bool {
	for i, c := range cells {
		if c.State == replicator.CellUnchanged && i < len(t.fields) && t.fields[i].target != "" {
			return true
		}
	}
	return false
}

// KeyNull reports whether a key column of the row is NULL.
func (t *Table) KeyNull(cells []replicator.Cell) bool {
	for _, idx := range t.keyIdx {
		if idx < len(cells) && cells[idx].State == replicator.CellNull {
			return true
		}
	}
	return false
}

// MissesRequired reports whether the row leaves out, as unchanged, a column
// whose target column every insert must carry.
func (t *Table) MissesRequired(cells []replicator.Cell) bool {
	for i, c := range cells {
		if c.State == replicator.CellUnchanged && i < len(t.fields) && t.fields[i].required {
			return true
		}
	}
	return false
}

func cellValue(p *fieldPlan, c replicator.Cell, arena *valueArena) (replicator.Value, error) {
	switch c.State {
	case replicator.CellNull:
		return replicator.Null, nil
	case replicator.CellText:
		return p.enc.encode(arena, c.Data)
	}
	return replicator.Value{}, fmt.Errorf("unsupported column state %q", c.State)
}

// arena returns one buffer large enough for every value the row's record
// keeps: transcoded values are written into it and the others copied, so
// that the record holds none of the message it came from.
func (t *Table) arena(cells []replicator.Cell) valueArena {
	n := 0
	for i := range cells {
		if p := &t.fields[i]; p.target != "" && cells[i].State == replicator.CellText {
			n += len(cells[i].Data) + p.enc.transcodes(len(cells[i].Data))
		}
	}
	if n == 0 {
		return valueArena{}
	}
	return valueArena{buf: make([]byte, 0, n), held: n}
}

// LeftOutError describes columns a copy-every-column rule leaves out.
func LeftOutError(rule *Rule, columns []string) error {
	return fmt.Errorf("source columns %s are not in target table %s and are not copied: add them there and restart to copy them",
		strings.Join(columns, ", "), rule.Table)
}
