package replication

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/replicator-cdc/replicator"
)

// TableInfo is what the catalog says about a published table.
type TableInfo struct {
	Relation
	PrimaryKey []string
	// Generated names the table's generated columns, which are not in
	// Columns: pgoutput does not publish them (before PostgreSQL 18 never,
	// from 18 only with the publication option publish_generated_columns),
	// so neither the stream nor the snapshot carries them.
	Generated []string
	// EstimatedRows is the planner's estimate (-1 when never analyzed).
	EstimatedRows int64
	// typeNames are format_type() names, for casting key text back.
	typeNames []string
}

// Problems collects every preflight problem, so that the user fixes them in
// one go.
type Problems []string

func (p Problems) Error() string {
	return "source database is not ready:\n  - " + strings.Join(p, "\n  - ")
}

// CheckServer verifies wal_level and the role's REPLICATION attribute.
func CheckServer(ctx context.Context, conn *pgx.Conn) Problems {
	var problems Problems
	if p := CheckWALLevel(ctx, conn); p != "" {
		problems = append(problems, p)
	}
	if p := CheckReplicationRole(ctx, conn); p != "" {
		problems = append(problems, p)
	}
	return problems
}

// CheckWALLevel returns a problem with its fix, or "".
func CheckWALLevel(ctx context.Context, conn *pgx.Conn) string {
	var walLevel string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		return fmt.Sprintf("cannot read wal_level: %v", err)
	}
	if walLevel != "logical" {
		return fmt.Sprintf("wal_level is %q: set wal_level = logical in postgresql.conf (ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL", walLevel)
	}
	return ""
}

// CheckReplicationRole returns a problem with its fix, or "".
func CheckReplicationRole(ctx context.Context, conn *pgx.Conn) string {
	var role string
	var canReplicate bool
	if err := conn.QueryRow(ctx, "SELECT rolname, rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&role, &canReplicate); err != nil {
		return fmt.Sprintf("cannot read the role's attributes: %v", err)
	}
	if !canReplicate {
		return fmt.Sprintf("role %q may not replicate: ALTER ROLE %s WITH REPLICATION", role, quoteIdent(role))
	}
	return ""
}

// SplitName splits "schema.table" (a bare name means public).
func SplitName(qualified string) (schema, table string) {
	if i := strings.IndexByte(qualified, '.'); i >= 0 {
		return qualified[:i], qualified[i+1:]
	}
	return "public", qualified
}

var errNoTable = errors.New("table not found")

// LoadTable reads a table's columns (as pgoutput publishes them: no dropped
// or generated columns), generated columns, primary key and replica
// identity.
func LoadTable(ctx context.Context, conn *pgx.Conn, qualified string) (*TableInfo, error) {
	schema, name := SplitName(qualified)
	info := &TableInfo{Relation: Relation{Namespace: schema, Name: name}}
	var identity string
	var reltuples float64
	err := conn.QueryRow(ctx, `
		SELECT c.oid, c.relreplident::text, c.reltuples::float8
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, schema, name).Scan(&info.ID, &identity, &reltuples)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", qualified, errNoTable)
	}
	if err != nil {
		return nil, fmt.Errorf("read table %s: %w", qualified, err)
	}
	info.ReplicaIdentity = identity[0]
	info.EstimatedRows = int64(reltuples)
	rows, err := conn.Query(ctx, `
		SELECT a.attname, a.atttypid, a.atttypmod, format_type(a.atttypid, a.atttypmod),
		       COALESCE(a.attnum = ANY(i.indkey), false), COALESCE(a.attnum = ANY(ri.indkey), false),
		       a.attgenerated <> ''
		FROM pg_attribute a
		LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
		LEFT JOIN pg_index ri ON ri.indrelid = a.attrelid AND ri.indisreplident
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, info.ID)
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", qualified, err)
	}
	defer rows.Close()
	for rows.Next() {
		var col Column
		var typeName string
		var inPK, inIdentityIndex, generated bool
		if err := rows.Scan(&col.Name, &col.TypeOID, &col.TypMod, &typeName, &inPK, &inIdentityIndex, &generated); err != nil {
			return nil, fmt.Errorf("read columns of %s: %w", qualified, err)
		}
		if inPK {
			info.PrimaryKey = append(info.PrimaryKey, col.Name)
		}
		if generated {
			info.Generated = append(info.Generated, col.Name)
			continue
		}
		switch info.ReplicaIdentity {
		case 'd':
			col.Key = inPK
		case 'i':
			col.Key = inIdentityIndex
		case 'f':
			col.Key = true
		}
		info.Columns = append(info.Columns, col)
		info.typeNames = append(info.typeNames, typeName)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", qualified, err)
	}
	return info, nil
}

// IsNoTable reports whether err says a table does not exist.
func IsNoTable(err error) bool { return errors.Is(err, errNoTable) }

// IdentityCovers reports whether deletes and key-changing updates of the
// table carry every column of key in their old tuple.
func (t *TableInfo) IdentityCovers(key []string) bool {
	for _, k := range key {
		found := false
		for _, c := range t.Columns {
			if c.Name == k && c.Key {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// EnsurePublication creates the publication or sets its tables to exactly
// tables ("schema.table").
func EnsurePublication(ctx context.Context, conn *pgx.Conn, name string, tables []string) error {
	quoted := make([]string, len(tables))
	for i, t := range tables {
		s, n := SplitName(t)
		quoted[i] = quoteIdent(s) + "." + quoteIdent(n)
	}
	list := strings.Join(quoted, ", ")
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("read publication %s: %w", name, err)
	}
	sql := fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s", quoteIdent(name), list)
	if exists {
		sql = fmt.Sprintf("ALTER PUBLICATION %s SET TABLE %s", quoteIdent(name), list)
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("set up publication %s: %w (the role needs CREATE on the database and ownership of the tables)", name, err)
	}
	return nil
}

// SlotPosition returns the slot's confirmed position; found is false when
// the slot does not exist.
func SlotPosition(ctx context.Context, conn *pgx.Conn, slot string) (lsn replicator.LSN, found bool, err error) {
	var confirmed *string
	var plugin string
	err = conn.QueryRow(ctx, `SELECT confirmed_flush_lsn::text, plugin FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()`, slot).Scan(&confirmed, &plugin)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read slot %s: %w", slot, err)
	}
	if plugin != "pgoutput" {
		return 0, false, fmt.Errorf("slot %s uses plugin %s, not pgoutput: choose another source.slot", slot, plugin)
	}
	if confirmed == nil {
		return 0, true, nil
	}
	lsn, err = replicator.ParseLSN(*confirmed)
	return lsn, true, err
}
