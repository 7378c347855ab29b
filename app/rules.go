package app

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/mapping"
	"github.com/replicator-cdc/replicator/replication"
)

// sourceTable is a mapping resolved against the source catalog.
type sourceTable struct {
	rule *mapping.Rule
	info *replication.TableInfo
	// warnings are conditions that do not stop the daemon but lose
	// something a person should know about.
	warnings []string
}

// resolve checks the server and every mapped table, reporting all problems
// at once, and builds the rules: default keys from primary keys, columns
// from the catalog when the mapping lists none.
func resolve(ctx context.Context, conn *pgx.Conn, cfg *config.Config) ([]sourceTable, error) {
	problems := replication.CheckServer(ctx, conn)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var tables []sourceTable
	for _, m := range cfg.Mappings {
		info, err := replication.LoadTable(ctx, conn, m.Source)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if replication.IsNoTable(err) {
			problems = append(problems, fmt.Sprintf("mapping %s: table not found in the source database: create it or fix the mapping's source", m.Source))
			continue
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("mapping %s: %v", m.Source, err))
			continue
		}
		rule, ruleProblems := buildRule(m, info)
		problems = append(problems, ruleProblems...)
		problems = append(problems, filterProblems(ctx, conn, m, info)...)
		if rule != nil {
			tables = append(tables, sourceTable{rule: rule, info: info, warnings: append(ruleWarnings(rule, info), driftWarnings(m, rule, info)...)})
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return tables, nil
}

func buildRule(m *config.Mapping, info *replication.TableInfo) (*mapping.Rule, []string) {
	var problems []string
	rule := &mapping.Rule{
		Source: m.Source, Target: m.Target, Table: m.Table, Key: m.Key,
		OnDelete: m.OnDelete.Mode, SoftColumn: m.OnDelete.SoftColumn, OnTruncate: m.OnTruncate, OnReject: m.OnReject,
		Snapshot: m.Snapshot, Where: m.Where, AllColumns: !m.ColumnsGiven, OnMissingColumn: m.OnMissingColumn,
	}
	has := make(map[string]bool, len(info.Columns))
	for _, c := range info.Columns {
		has[c.Name] = true
	}
	if len(rule.Key) == 0 {
		if len(info.PrimaryKey) == 0 {
			problems = append(problems, fmt.Sprintf("mapping %s: the table has no primary key: add one, or name the conflict key's columns with key: [...] in the mapping", m.Source))
		}
		rule.Key = info.PrimaryKey
	}
	for _, k := range rule.Key {
		switch {
		case slices.Contains(info.Generated, k):
			problems = append(problems, fmt.Sprintf("mapping %s: key column %s is a generated column, %s, so changes would not carry the key: name key columns that are not generated with key: [...]", m.Source, k, unpublished))
		case !has[k]:
			problems = append(problems, fmt.Sprintf("mapping %s: key column %s is not in the table", m.Source, k))
		}
	}
	if m.ColumnsGiven {
		for _, c := range m.Columns {
			if slices.Contains(info.Generated, c.Source) {
				problems = append(problems, fmt.Sprintf("mapping %s: column %s is a generated column, %s, so the replicator never sees its value: leave it out of columns and compute it on the target, or map a plain column", m.Source, c.Source, unpublished))
				continue
			}
			if !has[c.Source] {
				// Left out under skip: the mapping says to go on without it,
				// after a restart as before it (ruleWarnings tells).
				if m.OnMissingColumn != mapping.MissingSkip {
					problems = append(problems, fmt.Sprintf("%v (columns: %s)", &mapping.MissingColumn{Source: m.Source, Column: c.Source, Target: c.Name}, columnNames(info)))
				}
				continue
			}
			rule.Columns = append(rule.Columns, mapping.ColumnRule{Source: c.Source, Target: c.Name, Format: c.Format})
		}
	} else {
		for _, c := range info.Columns {
			rule.Columns = append(rule.Columns, mapping.ColumnRule{Source: c.Name, Target: c.Name})
		}
	}
	if rule.OnDelete != mapping.DeleteIgnore && len(rule.Key) > 0 && !info.IdentityCovers(rule.Key) {
		problems = append(problems, fmt.Sprintf("mapping %s: deletes would not carry the key (%s) because the replica identity does not include it: ALTER TABLE %s REPLICA IDENTITY FULL, or set on_delete: ignore",
			m.Source, strings.Join(rule.Key, ", "), m.Source))
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return rule, nil
}

// unpublished says why generated columns cannot be mirrored.
const unpublished = "which PostgreSQL does not publish to logical replication (before version 18 never, from 18 only with the publication option publish_generated_columns)"

// ruleWarnings are what a rule leaves out without the user having asked:
// the generated columns of a default (every column) mapping.
func ruleWarnings(rule *mapping.Rule, info *replication.TableInfo) []string {
	if !rule.AllColumns || len(info.Generated) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("mapping %s: generated column(s) %s are left out, %s: the target's column(s) of that name stay as they are (NULL or their default); compute them on the target, or map a plain column that holds the value",
		rule.Source, strings.Join(info.Generated, ", "), unpublished)}
}

// driftWarnings lists what a rule that passed loses by the source's shape:
// listed columns left out under on_missing_column: skip, and key changes
// the stream cannot see.
func driftWarnings(m *config.Mapping, rule *mapping.Rule, info *replication.TableInfo) []string {
	var warnings []string
	if m.ColumnsGiven {
		var missing []string
		for _, c := range m.Columns {
			if !slices.ContainsFunc(info.Columns, func(col replicator.Column) bool { return col.Name == c.Source }) {
				missing = append(missing, c.Source)
			}
		}
		if len(missing) > 0 {
			warnings = append(warnings, fmt.Sprintf("mapping %s: mapped columns %s are not in the table (renamed or dropped): on_missing_column: skip leaves them out, so their target columns are no longer updated; fix the mapping's columns",
				m.Source, strings.Join(missing, ", ")))
		}
	}
	if !info.IdentityCovers(rule.Key) {
		warnings = append(warnings, fmt.Sprintf("mapping %s: the key (%s) is not in the replica identity (%s), so an update that changes only the key does not send the old key: the old row stays on the target next to the new one. ALTER TABLE %s REPLICA IDENTITY FULL",
			m.Source, strings.Join(rule.Key, ", "), identityName(info.ReplicaIdentity), m.Source))
	}
	return warnings
}

func columnNames(info *replication.TableInfo) string {
	names := make([]string, len(info.Columns))
	for i, c := range info.Columns {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}
