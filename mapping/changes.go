package mapping

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/replicator-cdc/replicator"
)

// Mapper follows the stream's relations and turns row changes into records.
type Mapper struct {
	// rules are a source table's mappings: several fan one table out.
	rules  map[string][]*Rule
	tables map[uint32][]*Table // empty value: a relation we saw but do not map
	types  Types
	fetch  Fetcher
	logger *slog.Logger
	notice func(source string, err error)
	// inSource, when set, tells whether the source table has a column now.
	inSource func(table, column string) (bool, error)

	ancestors AncestorLookup
	logged    map[uint32]bool // relations whose mapping was already logged
}

// AncestorLookup returns the partitioned tables a relation is a partition
// of ("schema.table"), nearest first; found is false when the relation is no
// longer in the catalog.
type AncestorLookup func(ctx context.Context, relID uint32) (ancestors []string, found bool, err error)

// ResolvePartitions makes a relation that no rule names, but that is a
// partition of a mapped table, follow that table's rule. pgoutput names
// partitions when the publication does not publish through the root (one
// created by someone else, or changes written before it was altered).
func (m *Mapper) ResolvePartitions(lookup AncestorLookup) {
	m.ancestors = lookup
}

// NewMapper maps the given rules; fetch reads whole rows when a key change
// arrives with unchanged (TOASTed) values.
func NewMapper(rules []*Rule, fetch Fetcher, logger *slog.Logger) *Mapper {
	m := &Mapper{rules: make(map[string][]*Rule, len(rules)), tables: map[uint32][]*Table{}, fetch: fetch, logger: logger, logged: map[uint32]bool{}}
	for _, r := range rules {
		m.rules[r.Source] = append(m.rules[r.Source], r)
	}
	return m
}

// NoticeWith sets where conditions a person should see go (columns left
// out of a copy-every-column mapping), beyond the log.
func (m *Mapper) NoticeWith(notice func(source string, err error)) { m.notice = notice }

// CatalogWith sets how the mapper asks whether the source table has a
// column now. A replay after a restart can bring changes older than a
// column's rename, described by a Relation without the column that the
// (already fixed) mapping names: those are older rows, not a missing column.
func (m *Mapper) CatalogWith(inSource func(table, column string) (bool, error)) {
	m.inSource = inSource
}

// SetTypes makes the mapper resolve types the mapping does not know
// (domains, enums, arrays of them…) through the source catalog.
func (m *Mapper) SetTypes(types Types) { m.types = types }

// Types is the type lookup, shared with the snapshot so that snapshot rows
// encode exactly like streamed ones.
func (m *Mapper) Types() Types { return m.types }

// Relation (re)compiles the table a Relation message describes; a schema
// change mid-stream lands here. A partition of a mapped table follows that
// table's rule; a relation no rule covers is logged once and ignored.
func (m *Mapper) Relation(ctx context.Context, rel *replicator.Relation) error {
	rules, ok := m.rules[rel.QualifiedName()]
	if !ok {
		var err error
		if rules, err = m.partitionRules(ctx, rel); err != nil {
			return err
		}
	}
	if len(rules) == 0 {
		m.tables[rel.ID] = nil
		if !m.logged[rel.ID] {
			m.logged[rel.ID] = true
			m.logger.Info("the stream carries a table no mapping names; its changes are ignored", "table", rel.QualifiedName())
		}
		return nil
	}
	tables := make([]*Table, len(rules))
	for i, rule := range rules {
		t, err := m.compile(rule, rel)
		if err != nil {
			return err
		}
		tables[i] = t
	}
	m.tables[rel.ID] = tables
	return nil
}

// compile compiles one rule for rel, telling older rows from a missing
// column through the source catalog.
func (m *Mapper) compile(rule *Rule, rel *replicator.Relation) (*Table, error) {
	var olderThan map[string]bool
	t, err := compile(rule, rel, m.types, m.logger, nil)
	for missing := (*MissingColumn)(nil); errors.As(err, &missing) && m.inSource != nil && !olderThan[missing.Column]; {
		now, lookErr := m.inSource(rule.Source, missing.Column)
		if lookErr != nil {
			return nil, fmt.Errorf("%w (and reading the source catalog failed: %v)", err, lookErr)
		}
		if !now {
			break
		}
		if olderThan == nil {
			olderThan = map[string]bool{}
		}
		olderThan[missing.Column] = true
		t, err = compile(rule, rel, m.types, m.logger, olderThan)
	}
	if err != nil {
		return nil, fmt.Errorf("%w (changes of %s arrive under that name)", err, rel.QualifiedName())
	}
	if len(t.LeftOut) > 0 && m.notice != nil {
		m.notice(rule.Source, LeftOutError(rule, t.LeftOut))
	}
	return t, nil
}

// partitionRules returns the rules of the topmost mapped table rel is a
// partition of, or nil.
func (m *Mapper) partitionRules(ctx context.Context, rel *replicator.Relation) ([]*Rule, error) {
	if m.ancestors == nil {
		return nil, nil
	}
	ancestors, found, err := m.ancestors(ctx, rel.ID)
	if err != nil {
		return nil, fmt.Errorf("mapping: cannot tell whether %s, which the stream carries, is a partition of a mapped table: %w", rel.QualifiedName(), err)
	}
	if !found {
		if m.logged[rel.ID] {
			return nil, nil
		}
		m.logger.Warn("the stream carries a table that no longer exists and no mapping names; its changes are ignored (if it was a partition of a mapped table, resync that table)", "table", rel.QualifiedName(), "relation_id", rel.ID)
		m.logged[rel.ID] = true
		return nil, nil
	}
	var rules []*Rule
	for _, a := range ancestors {
		if r, ok := m.rules[a]; ok {
			rules = r
		}
	}
	if len(rules) > 0 && !m.logged[rel.ID] {
		m.logged[rel.ID] = true
		// pgoutput announces a partition along with its root even when it
		// publishes the changes under the root.
		m.logger.Debug("a partition of a mapped table; changes under its name follow the table's mapping",
			"partition", rel.QualifiedName(), "table", rules[0].Source)
	}
	return rules, nil
}

// Table returns the first compiled table of a relation id; nil when
// unmapped.
func (m *Mapper) Table(relID uint32) (*Table, error) {
	ts, err := m.Tables(relID)
	if err != nil || len(ts) == 0 {
		return nil, err
	}
	return ts[0], nil
}

// Tables returns the compiled tables of a relation id, one per mapping of
// its source table; none when unmapped.
func (m *Mapper) Tables(relID uint32) ([]*Table, error) {
	ts, ok := m.tables[relID]
	if !ok {
		return nil, fmt.Errorf("mapping: change for unknown relation id %d (no Relation message came first)", relID)
	}
	return ts, nil
}

// Change maps an Insert, Update or Delete message of a transaction that
// commits at lsn for every mapping of its table; emit receives the records
// in order. A record one mapping refuses (*RowError) does not keep the
// others from theirs: the refusals come back together (see RowErrors).
func (m *Mapper) Change(ctx context.Context, msg *replicator.Message, lsn replicator.LSN, emit func(*Table, replicator.Record) error) error {
	ts, err := m.Tables(msg.RelationID)
	if err != nil {
		return err
	}
	var refused []error
	for _, t := range ts {
		err := m.change(ctx, t, msg, lsn, emit)
		if _, ok := errors.AsType[*RowError](err); ok {
			refused = append(refused, err)
			continue
		}
		if err != nil {
			return err
		}
	}
	return errors.Join(refused...)
}

// RowErrors lists the refused records of Change's error; none when the
// error is something else.
func RowErrors(err error) []*RowError {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var rows []*RowError
		for _, e := range joined.Unwrap() {
			row, ok := errors.AsType[*RowError](e)
			if !ok {
				return nil
			}
			rows = append(rows, row)
		}
		return rows
	}
	if row, ok := errors.AsType[*RowError](err); ok {
		return []*RowError{row}
	}
	return nil
}

func (m *Mapper) change(ctx context.Context, t *Table, msg *replicator.Message, lsn replicator.LSN, emit func(*Table, replicator.Record) error) error {
	switch msg.Kind {
	case replicator.MessageInsert:
		rec, err := t.Upsert(msg.New, lsn)
		if err != nil {
			return err
		}
		return emit(t, rec)
	case replicator.MessageDelete:
		rec, ok, err := t.Delete(msg.Old, lsn)
		if err != nil || !ok {
			return err
		}
		return emit(t, rec)
	case replicator.MessageUpdate:
		return m.update(ctx, t, msg, lsn, emit)
	}
	return fmt.Errorf("mapping: %c is not a row change", msg.Kind)
}

// update: a changed key is a delete of the old row and an upsert of the new
// one, which must be whole — values pgoutput left out as unchanged are read
// from the source. So are unchanged values of columns every insert must
// carry, since the target checks the proposed row of an upsert before it
// finds the existing one. A row gone by then is skipped: the change that
// removed it follows in the stream.
func (m *Mapper) update(ctx context.Context, t *Table, msg *replicator.Message, lsn replicator.LSN, emit func(*Table, replicator.Record) error) error {
	newCells := msg.New
	// oldKey is an old key that cannot be encoded: no row of it was ever
	// written, and the new row must still be. Its rejection comes last.
	var oldKey *RowError
	switch {
	case msg.Old != nil && t.KeyChanged(msg.Old, msg.New):
		rec, ok, err := t.Delete(msg.Old, lsn)
		if !errors.As(err, &oldKey) && err != nil {
			return err
		}
		if ok && oldKey == nil {
			if err := emit(t, rec); err != nil {
				return err
			}
		}
		if t.HasUnchanged(newCells) && !t.KeyNull(newCells) {
			cells, found, err := m.fetch(ctx, t.rel, t.KeyColumns(), t.KeyText(newCells))
			if err != nil {
				return fmt.Errorf("mapping %s: read row after key change: %w", t.Rule.Source, err)
			}
			if !found {
				return rowErr(oldKey)
			}
			newCells = cells
		}
	case t.MissesRequired(newCells) && !t.KeyNull(newCells):
		// A whole old row (REPLICA IDENTITY FULL) holds the unchanged values.
		if msg.Old != nil && !msg.OldIsKey {
			newCells = fillUnchanged(newCells, msg.Old)
			if !t.MissesRequired(newCells) {
				break
			}
		}
		cells, found, err := m.fetch(ctx, t.rel, t.KeyColumns(), t.KeyText(newCells))
		if err != nil {
			return fmt.Errorf("mapping %s: read unchanged values of NOT NULL target columns: %w", t.Rule.Source, err)
		}
		if !found {
			return nil
		}
		// The change's own values stay; only what it left out is filled in.
		newCells = fillUnchanged(newCells, cells)
	}
	rec, err := t.Upsert(newCells, lsn)
	if err != nil {
		return err
	}
	if err := emit(t, rec); err != nil {
		return err
	}
	return rowErr(oldKey)
}

func fillUnchanged(cells, current []replicator.Cell) []replicator.Cell {
	out := make([]replicator.Cell, len(cells))
	for i, c := range cells {
		if c.State == replicator.CellUnchanged && i < len(current) {
			c = current[i]
		}
		out[i] = c
	}
	return out
}

// rowErr is e as an error, nil when e is nil.
func rowErr(e *RowError) error {
	if e == nil {
		return nil
	}
	return e
}
