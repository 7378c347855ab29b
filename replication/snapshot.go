package replication

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/internal/pgdsn"
)

// BeginSnapshot opens the read-only repeatable-read transaction the initial
// copy reads in. With an exported snapshot name it sees exactly the data the
// slot's stream starts after; without one (resuming after a crash, or a table
// added later) it sees the present, and the stream's replay converges.
func BeginSnapshot(ctx context.Context, conn *pgx.Conn, snapshotName string) (pgx.Tx, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("snapshot: begin: %w", err)
	}
	if snapshotName != "" {
		if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(snapshotName)); err != nil {
			_ = tx.Rollback(ctx)
			return nil, fmt.Errorf("snapshot: adopt exported snapshot: %w", err)
		}
	}
	return tx, nil
}

// ConnectSQL opens an ordinary connection with the session settings the
// decoder expects (so snapshot rows read like streamed ones).
func ConnectSQL(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgdsn.Parse(dsn)
	if err != nil {
		return nil, fmt.Errorf("source: source.dsn %w", err)
	}
	for k, v := range sessionParams {
		cfg.RuntimeParams[k] = v
	}
	configureDial(&cfg.Config)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("source: connect to %s:%d as %s: %w (check source.dsn and that PostgreSQL accepts connections from here)", cfg.Host, cfg.Port, cfg.User, err)
	}
	return conn, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// ReadChunk reads up to limit rows whose key is after `after` (nil: from
// the start), in key order, as text cells in the relation's column order.
// Only the columns read reports true for are read; the others come as
// NULL, so that a chunk never holds what the mapping leaves out (a wide
// column would make it gigabytes). Rows with a NULL in the key have no
// place in that order: ReadNullKeys reads them.
func ReadChunk(ctx context.Context, q querier, info *TableInfo, key []string, after [][]byte, limit int, read func(column int) bool) ([][]replicator.Cell, error) {
	keyCols := make([]string, len(key))
	conds := make([]string, len(key))
	for i, k := range key {
		keyCols[i] = quoteIdent(k)
		conds[i] = keyCols[i] + " IS NOT NULL"
	}
	if info.Filter != "" {
		conds = append(conds, "("+info.Filter+")")
	}
	args := []any{pgx.QueryResultFormats{pgx.TextFormatCode}}
	if after != nil {
		casts, err := info.keyCasts(key)
		if err != nil {
			return nil, err
		}
		params := make([]string, len(key))
		for i := range key {
			params[i] = fmt.Sprintf("$%d::text::%s", i+1, casts[i])
			args = append(args, string(after[i]))
		}
		conds = append(conds, fmt.Sprintf("(%s) > (%s)", strings.Join(keyCols, ", "), strings.Join(params, ", ")))
	}
	sql := fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT %d",
		selectList(info, read), info.quotedName(), strings.Join(conds, " AND "), strings.Join(keyCols, ", "), limit)
	rows, _, err := readRows(ctx, q, info, sql, args, false)
	return rows, err
}

// ReadNullKeys reads up to limit rows with a NULL in a key column, in
// physical order after the row at ctid `after` ("": from the start), and
// returns the ctid of the last one. Within the snapshot's transaction the
// physical order is stable. Columns are read as by ReadChunk.
func ReadNullKeys(ctx context.Context, q querier, info *TableInfo, key []string, after string, limit int, read func(column int) bool) ([][]replicator.Cell, string, error) {
	conds := make([]string, len(key))
	for i, k := range key {
		conds[i] = quoteIdent(k) + " IS NULL"
	}
	where := "(" + strings.Join(conds, " OR ") + ")"
	if info.Filter != "" {
		where += " AND (" + info.Filter + ")"
	}
	args := []any{pgx.QueryResultFormats{pgx.TextFormatCode}}
	if after != "" {
		where += " AND ctid > $1::tid"
		args = append(args, after)
	}
	sql := fmt.Sprintf("SELECT %s, ctid FROM %s WHERE %s ORDER BY ctid LIMIT %d", selectList(info, read), info.quotedName(), where, limit)
	return readRows(ctx, q, info, sql, args, true)
}

func selectList(info *TableInfo, read func(column int) bool) string {
	cols := make([]string, len(info.Columns))
	for i, c := range info.Columns {
		cols[i] = "NULL"
		if read(i) {
			cols[i] = quoteIdent(c.Name)
		}
	}
	return strings.Join(cols, ", ")
}

func (t *TableInfo) quotedName() string { return quoteIdent(t.Namespace) + "." + quoteIdent(t.Name) }

// readRows runs a snapshot read; withCTID: the last column is the row's
// ctid, returned for the last row rather than as a cell.
func readRows(ctx context.Context, q querier, info *TableInfo, sql string, args []any, withCTID bool) ([][]replicator.Cell, string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("snapshot: read %s: %w", info.QualifiedName(), err)
	}
	defer rows.Close()
	var out [][]replicator.Cell
	var last string
	for rows.Next() {
		raw := rows.RawValues()
		if withCTID {
			last = string(raw[len(raw)-1])
			raw = raw[:len(raw)-1]
		}
		out = append(out, copyRow(raw))
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("snapshot: read %s: %w", info.QualifiedName(), err)
	}
	return out, last, nil
}

// copyRow copies a row's values (valid only until the next row) into one
// buffer.
func copyRow(raw [][]byte) []replicator.Cell {
	n := 0
	for _, v := range raw {
		n += len(v)
	}
	buf := make([]byte, 0, n)
	cells := make([]replicator.Cell, len(raw))
	for i, v := range raw {
		if v == nil {
			cells[i] = replicator.Cell{State: replicator.CellNull}
			continue
		}
		start := len(buf)
		buf = append(buf, v...)
		cells[i] = replicator.Cell{State: replicator.CellText, Data: buf[start:len(buf):len(buf)]}
	}
	return cells
}

func (t *TableInfo) keyCasts(key []string) ([]string, error) {
	casts := make([]string, len(key))
	for i, k := range key {
		idx := -1
		for j, c := range t.Columns {
			if c.Name == k {
				idx = j
			}
		}
		if idx < 0 {
			return nil, fmt.Errorf("snapshot: %s has no key column %s", t.QualifiedName(), k)
		}
		casts[i] = t.typeNames[idx]
	}
	return casts, nil
}

// Fetcher reads single rows by key on its own connection; the mapping uses
// it to complete rows whose key changed while a TOASTed value did not.
type Fetcher struct {
	Conn *pgx.Conn
}

// Fetch reads the row of rel whose key columns equal key (source text).
func (f *Fetcher) Fetch(ctx context.Context, rel *replicator.Relation, keyColumns []string, key [][]byte) ([]replicator.Cell, bool, error) {
	info, err := LoadTable(ctx, f.Conn, rel.QualifiedName())
	if err != nil {
		return nil, false, err
	}
	// The catalog may have moved on since the Relation message; read the
	// stream's columns by name so the cells line up with it.
	byName := make(map[string]bool, len(info.Columns))
	for _, c := range info.Columns {
		byName[c.Name] = true
	}
	cols := make([]string, len(rel.Columns))
	for i, c := range rel.Columns {
		if byName[c.Name] {
			cols[i] = quoteIdent(c.Name)
		} else {
			cols[i] = "NULL"
		}
	}
	casts, err := info.keyCasts(keyColumns)
	if err != nil {
		return nil, false, err
	}
	conds := make([]string, len(keyColumns))
	args := []any{pgx.QueryResultFormats{pgx.TextFormatCode}}
	for i, k := range keyColumns {
		conds[i] = fmt.Sprintf("%s = $%d::text::%s", quoteIdent(k), i+1, casts[i])
		args = append(args, string(key[i]))
	}
	sql := fmt.Sprintf("SELECT %s FROM %s.%s WHERE %s", strings.Join(cols, ", "), quoteIdent(rel.Namespace), quoteIdent(rel.Name), strings.Join(conds, " AND "))
	rows, err := f.Conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, false, fmt.Errorf("fetch row of %s: %w", rel.QualifiedName(), err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, false, fmt.Errorf("fetch row of %s: %w", rel.QualifiedName(), err)
		}
		return nil, false, nil
	}
	cells := copyRow(rows.RawValues())
	rows.Close()
	if err := rows.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return nil, false, fmt.Errorf("fetch row of %s: %w", rel.QualifiedName(), err)
	}
	return cells, true, nil
}
