package replication

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/replicator-cdc/replicator"
)

// TableInfo is what the catalog says about a published table.
type TableInfo struct {
	replicator.Relation
	PrimaryKey []string
	// Generated names the table's generated columns, which are not in
	// Columns: pgoutput does not publish them (before PostgreSQL 18 never,
	// from 18 only with the publication option publish_generated_columns),
	// so neither the stream nor the snapshot carries them.
	Generated []string
	// Partitioned says the table is partitioned: its rows live in its
	// partitions, which reads of the table include.
	Partitioned bool
	// EstimatedRows is the planner's estimate (-1 when never analyzed).
	EstimatedRows int64
	// Filter is the mapping's row filter (where:), which snapshot reads
	// apply; "": every row.
	Filter string
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
	info := &TableInfo{Relation: replicator.Relation{Namespace: schema, Name: name}}
	var identity, kind string
	var reltuples float64
	err := conn.QueryRow(ctx, `
		SELECT c.oid, c.relreplident::text, c.reltuples::float8, c.relkind::text
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, schema, name).Scan(&info.ID, &identity, &reltuples, &kind)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", qualified, errNoTable)
	}
	if err != nil {
		return nil, fmt.Errorf("read table %s: %w", qualified, err)
	}
	info.ReplicaIdentity = identity[0]
	info.Partitioned = kind == "p"
	if info.Partitioned {
		// A partitioned table has no rows of its own: estimate from its leaves.
		err := conn.QueryRow(ctx, `
			SELECT CASE WHEN bool_and(c.reltuples < 0) THEN -1 ELSE COALESCE(sum(GREATEST(c.reltuples, 0)), 0) END::float8
			FROM pg_partition_tree($1::oid::regclass) t JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf`, info.ID).Scan(&reltuples)
		if err != nil {
			return nil, fmt.Errorf("read the partitions of %s: %w", qualified, err)
		}
	}
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
		var col replicator.Column
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

// Publication is what the catalog says about a publication.
type Publication struct {
	Exists bool
	// Tables are the tables it names ("schema.table"), sorted.
	Tables []string
	// ViaRoot is publish_via_partition_root: changes of a partition are
	// published under its root's name and shape.
	ViaRoot bool
	Owner   string
	// Ours says the current role may alter it (owns it, or is a member of
	// its owner).
	Ours bool
	// filters are "schema.table\n<row filter>" for the filtered tables.
	filters []string
}

// ReadPublication reads a publication's tables and settings.
func ReadPublication(ctx context.Context, conn *pgx.Conn, name string) (Publication, error) {
	var p Publication
	err := conn.QueryRow(ctx, `
		SELECT p.pubviaroot, pg_get_userbyid(p.pubowner), pg_has_role(current_user, p.pubowner, 'MEMBER'),
		       COALESCE((SELECT array_agg(n.nspname || '.' || c.relname ORDER BY 1)
		                 FROM pg_publication_rel r JOIN pg_class c ON c.oid = r.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		                 WHERE r.prpubid = p.oid), '{}'),
		       COALESCE((SELECT array_agg(n.nspname || '.' || c.relname || chr(10) || pg_get_expr(r.prqual, r.prrelid))
		                 FROM pg_publication_rel r JOIN pg_class c ON c.oid = r.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		                 WHERE r.prpubid = p.oid AND r.prqual IS NOT NULL), '{}')
		FROM pg_publication p WHERE p.pubname = $1`, name).Scan(&p.ViaRoot, &p.Owner, &p.Ours, &p.Tables, &p.filters)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("read publication %s: %w", name, err)
	}
	p.Exists = true
	return p, nil
}

// Filter is the row filter the publication holds for table ("": none),
// as PostgreSQL renders it.
func (p Publication) Filter(table string) string {
	for _, f := range p.filters {
		if name, expr, _ := strings.Cut(f, "\n"); name == table {
			return expr
		}
	}
	return ""
}

// Matches reports whether the publication covers exactly tables, with
// the row filters in filters (table → where:, absent: none), and
// publishes partitions through their root.
func (p Publication) Matches(tables []string, filters map[string]string) bool {
	want := append([]string(nil), tables...)
	sort.Strings(want)
	return p.ViaRoot && slices.Equal(p.Tables, want) && p.filtersMatch(tables, filters)
}

func (p Publication) filtersMatch(tables []string, filters map[string]string) bool {
	for _, t := range tables {
		if !sameFilter(p.Filter(t), filters[t]) {
			return false
		}
	}
	return true
}

// AlterCommands are the statements that make an existing publication cover
// exactly tables, with their row filters, through partition roots.
func (p Publication) AlterCommands(name string, tables []string, filters map[string]string) []string {
	var cmds []string
	want := append([]string(nil), tables...)
	sort.Strings(want)
	if !slices.Equal(p.Tables, want) || !p.filtersMatch(tables, filters) {
		cmds = append(cmds, fmt.Sprintf("ALTER PUBLICATION %s SET TABLE %s", quoteIdent(name), quotedTables(tables, filters)))
	}
	if !p.ViaRoot {
		cmds = append(cmds, fmt.Sprintf("ALTER PUBLICATION %s SET (publish_via_partition_root = true)", quoteIdent(name)))
	}
	return cmds
}

func quotedTables(tables []string, filters map[string]string) string {
	quoted := make([]string, len(tables))
	for i, t := range tables {
		s, n := SplitName(t)
		quoted[i] = quoteIdent(s) + "." + quoteIdent(n)
		if w := filters[t]; w != "" {
			quoted[i] += " WHERE (" + w + ")"
		}
	}
	return strings.Join(quoted, ", ")
}

// EnsurePublication creates the publication, or alters it, so that it
// covers exactly tables ("schema.table") with the row filters in filters
// and publishes the changes of a partitioned table under the partitioned
// table's name (without that, pgoutput names the partitions and no mapping
// would match them). A publication that already matches is left alone, so
// one created by someone else works without owning it.
func EnsurePublication(ctx context.Context, conn *pgx.Conn, name string, tables []string, filters map[string]string) error {
	pub, err := ReadPublication(ctx, conn, name)
	if err != nil {
		return err
	}
	cmds := []string{fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s WITH (publish_via_partition_root = true)", quoteIdent(name), quotedTables(tables, filters))}
	if pub.Exists {
		cmds = pub.AlterCommands(name, tables, filters)
	}
	for _, sql := range cmds {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("set up publication %s: %w (the role needs CREATE on the database and ownership of the tables and of the publication; or run as its owner: %s)", name, err, strings.Join(cmds, "; "))
		}
	}
	return nil
}

// PartitionAncestors returns the partitioned tables a relation is a
// partition of ("schema.table"), nearest first; found is false when the
// relation is no longer in the catalog.
func PartitionAncestors(ctx context.Context, conn *pgx.Conn, relID uint32) (ancestors []string, found bool, err error) {
	rows, err := conn.Query(ctx, `
		SELECT n.nspname || '.' || c.relname
		FROM pg_partition_ancestors($1::oid::regclass) WITH ORDINALITY a(relid, i)
		JOIN pg_class c ON c.oid = a.relid JOIN pg_namespace n ON n.oid = c.relnamespace
		ORDER BY a.i`, relID)
	if err != nil {
		return nil, false, fmt.Errorf("read the partition ancestors of relation %d: %w", relID, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, false, fmt.Errorf("read the partition ancestors of relation %d: %w", relID, err)
	}
	if len(names) == 0 {
		return nil, false, nil
	}
	return names[1:], true, nil
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

// SlotHolder reports whether a connection is streaming from the slot, and
// the server process that serves it.
func SlotHolder(ctx context.Context, conn *pgx.Conn, slot string) (pid int32, active bool, err error) {
	var holder *int32
	err = conn.QueryRow(ctx, `SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&active, &holder)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read slot %s: %w", slot, err)
	}
	if holder != nil {
		pid = *holder
	}
	return pid, active, nil
}
