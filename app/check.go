package app

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/mapping"
	"github.com/replicator-cdc/replicator/metrics"
	"github.com/replicator-cdc/replicator/replication"
)

// Check outcomes.
const (
	CheckOK   = "ok"
	CheckWarn = "warn"
	CheckFail = "FAIL"
)

// CheckItem is one line of the preflight checklist.
type CheckItem struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// Check runs the preflight checklist without changing anything: the
// database, the slot and publication, every mapped table and every target.
func Check(ctx context.Context, cfg *config.Config, deps Deps) []CheckItem {
	items := []CheckItem{{Name: "configuration valid", Status: CheckOK}}
	conn, err := replication.ConnectSQL(ctx, cfg.Source.DSN)
	if err != nil {
		return append(items, CheckItem{Name: "database reachable", Status: CheckFail, Detail: err.Error()})
	}
	defer conn.Close(context.Background())
	items = append(items, CheckItem{Name: "database reachable", Status: CheckOK, Detail: cfg.Source.RedactedDSN()})
	items = append(items, problemItem("wal_level = logical", replication.CheckWALLevel(ctx, conn)))
	items = append(items, problemItem("role may replicate", replication.CheckReplicationRole(ctx, conn)))
	items = append(items, keepSizeItem(ctx, conn))
	items = append(items, slotItem(ctx, conn, cfg.Source.Slot), slotStateItem(ctx, conn, cfg))
	items = append(items, publicationItem(ctx, conn, cfg))

	var tables []sourceTable
	for _, m := range cfg.Mappings {
		name := "table " + m.Source
		info, err := replication.LoadTable(ctx, conn, m.Source)
		if err != nil {
			detail := err.Error()
			if replication.IsNoTable(err) {
				detail = "not found in the source database: create it or fix the mapping's source"
			}
			items = append(items, CheckItem{Name: name, Status: CheckFail, Detail: detail})
			continue
		}
		rule, problems := buildRule(m, info)
		problems = append(problems, filterProblems(ctx, conn, m, info)...)
		if len(problems) > 0 {
			items = append(items, CheckItem{Name: name, Status: CheckFail, Detail: strings.Join(problems, "; ")})
			continue
		}
		detail := fmt.Sprintf("key (%s), %d columns, replica identity %s", strings.Join(rule.Key, ", "), len(rule.Columns), identityName(info.ReplicaIdentity))
		if info.Partitioned {
			detail += ", partitioned (copied and streamed through the partitioned table; PostgreSQL does not publish a TRUNCATE of a single partition: resync the table after one)"
		}
		item := CheckItem{Name: name, Status: CheckOK, Detail: detail}
		warnings := append(ruleWarnings(rule, info), driftWarnings(m, rule, info)...)
		if w := nullableKey(ctx, conn, info, rule.Key); w != "" {
			warnings = append(warnings, w)
		}
		if len(warnings) > 0 {
			item.Status = CheckWarn
			item.Detail += "; " + strings.Join(warnings, "; ")
		}
		items = append(items, item)
		tables = append(tables, sourceTable{rule: rule, info: info})
	}
	return append(items, targetItems(ctx, cfg, deps, tables)...)
}

// nullableKey warns about key columns that may hold NULL: such rows
// address no target row and go to the dead-letter file instead.
func nullableKey(ctx context.Context, conn *pgx.Conn, info *replication.TableInfo, key []string) string {
	rows, err := conn.Query(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attname = ANY($2) AND NOT attnotnull ORDER BY attnum`, info.ID, key)
	if err != nil {
		return fmt.Sprintf("cannot read whether the key columns allow NULL: %v", err)
	}
	nullable, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Sprintf("cannot read whether the key columns allow NULL: %v", err)
	}
	if len(nullable) == 0 {
		return ""
	}
	return fmt.Sprintf("key columns %s allow NULL: a row with a NULL key cannot be addressed on the target and goes to the dead-letter file instead; make them NOT NULL, or choose a key without NULLs",
		strings.Join(nullable, ", "))
}

func problemItem(name, problem string) CheckItem {
	if problem != "" {
		return CheckItem{Name: name, Status: CheckFail, Detail: problem}
	}
	return CheckItem{Name: name, Status: CheckOK}
}

func keepSizeItem(ctx context.Context, conn *pgx.Conn) CheckItem {
	name := "max_slot_wal_keep_size set"
	var keep string
	if err := conn.QueryRow(ctx, "SHOW max_slot_wal_keep_size").Scan(&keep); err != nil {
		return CheckItem{Name: name, Status: CheckFail, Detail: err.Error()}
	}
	if keep == "-1" {
		return CheckItem{Name: name, Status: CheckWarn, Detail: "unlimited: a slot left behind (daemon stopped, target down) can fill the disk with WAL; set max_slot_wal_keep_size (e.g. 50GB) in postgresql.conf"}
	}
	return CheckItem{Name: name, Status: CheckOK, Detail: keep}
}

func slotItem(ctx context.Context, conn *pgx.Conn, slot string) CheckItem {
	name := "slot " + slot
	var active bool
	var confirmed, walStatus *string
	err := conn.QueryRow(ctx, `SELECT active, confirmed_flush_lsn::text, wal_status FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&active, &confirmed, &walStatus)
	if err == pgx.ErrNoRows {
		return CheckItem{Name: name, Status: CheckOK, Detail: "does not exist yet: run creates it and copies every table"}
	}
	if err != nil {
		return CheckItem{Name: name, Status: CheckFail, Detail: err.Error()}
	}
	if walStatus != nil && *walStatus == "lost" {
		return CheckItem{Name: name, Status: CheckFail, Detail: "lost (invalidated): run 'replicator teardown --config FILE --yes' and start again for a full resync"}
	}
	detail := fmt.Sprintf("confirmed %s, wal_status %s", deref(confirmed), deref(walStatus))
	if active {
		detail += ", in use by a running daemon"
	}
	return CheckItem{Name: name, Status: CheckOK, Detail: detail}
}

func publicationItem(ctx context.Context, conn *pgx.Conn, cfg *config.Config) CheckItem {
	name := "publication " + cfg.Source.Publication
	pub, err := replication.ReadPublication(ctx, conn, cfg.Source.Publication)
	if err != nil {
		return CheckItem{Name: name, Status: CheckFail, Detail: err.Error()}
	}
	if !pub.Exists {
		return CheckItem{Name: name, Status: CheckOK, Detail: "does not exist yet: run creates it (publish_via_partition_root = true)"}
	}
	want, filters := publishedTables(cfg)
	if pub.Matches(want, filters) {
		return CheckItem{Name: name, Status: CheckOK, Detail: "covers exactly the mapped tables, publish_via_partition_root = true"}
	}
	cmds := strings.Join(pub.AlterCommands(cfg.Source.Publication, want, filters), "; ")
	if !pub.Ours {
		return CheckItem{Name: name, Status: CheckFail, Detail: fmt.Sprintf("created by %s, which this role cannot alter; it must cover exactly the mapped tables and publish partitions through their root (otherwise changes of a partitioned table arrive under the partitions' names). Run as %s: %s",
			pub.Owner, pub.Owner, cmds)}
	}
	detail := fmt.Sprintf("covers %s; run sets it to the mapped tables %s", strings.Join(pub.Tables, ", "), strings.Join(want, ", "))
	if !pub.ViaRoot {
		detail += " and sets publish_via_partition_root = true"
	}
	return CheckItem{Name: name, Status: CheckOK, Detail: detail}
}

func targetItems(ctx context.Context, cfg *config.Config, deps Deps, tables []sourceTable) []CheckItem {
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	docs, closeDocs, err := SharedDocs(ctx, cfg)
	if err != nil {
		return []CheckItem{{Name: "state store", Status: CheckFail, Detail: err.Error()}}
	}
	defer closeDocs()
	writers, closeWriters, err := buildWriters(cfg, deps, metrics.NewTarget(deps.Registry), cfg.State.Dir, docs, nil)
	if err != nil {
		return []CheckItem{{Name: "targets", Status: CheckFail, Detail: err.Error()}}
	}
	defer closeWriters()
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	leftOut := fitTargets(ctx, tables, writers, logger)
	specs := map[string][]replicator.TableSpec{}
	var items []CheckItem
	for _, t := range tables {
		specs[t.rule.Target] = append(specs[t.rule.Target], t.rule.Spec())
		if cols := leftOut[t.rule.Source]; len(cols) > 0 {
			items = append(items, CheckItem{Name: "columns of " + t.rule.Source, Status: CheckWarn, Detail: mapping.LeftOutError(t.rule, cols).Error()})
		}
	}
	names := make([]string, 0, len(writers))
	for n := range writers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		name := fmt.Sprintf("target %s (%s)", n, cfg.Targets[n].Type)
		if len(specs[n]) == 0 {
			items = append(items, CheckItem{Name: name, Status: CheckWarn, Detail: "not checked: none of its mapped source tables passed"})
			continue
		}
		warnings, err := preflight(ctx, writers[n], specs[n])
		if err != nil {
			items = append(items, CheckItem{Name: name, Status: CheckFail, Detail: err.Error()})
			continue
		}
		tableNames := make([]string, len(specs[n]))
		for i, s := range specs[n] {
			tableNames[i] = s.Table
		}
		item := CheckItem{Name: name, Status: CheckOK, Detail: "reachable; tables " + strings.Join(tableNames, ", ") + " have the mapped columns and key"}
		if len(warnings) > 0 {
			item.Status = CheckWarn
			item.Detail = "reachable; tables " + strings.Join(tableNames, ", ") + " have the mapped columns; " + strings.Join(warnings, "; ")
		}
		items = append(items, item)
	}
	return items
}

// preflighter is a writer whose preflight also reports what the target's
// answers cannot decide (warnings), apart from what certainly fails.
type preflighter interface {
	Preflight(ctx context.Context, tables []replicator.TableSpec) (warnings []string, err error)
}

func preflight(ctx context.Context, w replicator.Writer, tables []replicator.TableSpec) ([]string, error) {
	if p, ok := w.(preflighter); ok {
		return p.Preflight(ctx, tables)
	}
	return nil, w.Prepare(ctx, tables)
}

func identityName(b byte) string {
	switch b {
	case 'd':
		return "default (primary key)"
	case 'f':
		return "full"
	case 'i':
		return "index"
	case 'n':
		return "nothing"
	}
	return string(b)
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}
