package app

import (
	"slices"

	"github.com/replicator-cdc/replicator/config"
)

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
