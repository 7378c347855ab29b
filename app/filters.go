package app

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/replication"
)

// filterProblems checks a mapping's where: against the table and its
// replica identity, and makes the snapshot's reads apply it.
func filterProblems(ctx context.Context, conn *pgx.Conn, m *config.Mapping, info *replication.TableInfo) []string {
	if m.Where == "" {
		return nil
	}
	info.Filter = m.Where
	if err := replication.CheckFilter(ctx, conn, info, m.Where); err != nil {
		return []string{fmt.Sprintf("mapping %s: %v", m.Source, err)}
	}
	return nil
}

// publishedTables are the tables the publication names, once each (a
// table fanned out to several targets is published once), and their row
// filters (where:).
func publishedTables(cfg *config.Config) (tables []string, filters map[string]string) {
	filters = map[string]string{}
	for _, m := range cfg.Mappings {
		if slices.Contains(tables, m.Source) {
			continue
		}
		tables = append(tables, m.Source)
		if m.Where != "" {
			filters[m.Source] = m.Where
		}
	}
	return tables, filters
}
