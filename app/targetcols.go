package app

import (
	"context"
	"log/slog"
	"slices"

	"github.com/replicator-cdc/replicator"
)

// columnReader is a writer that can read a target table's columns: all of
// them, and those every insert must carry (NOT NULL without a default).
type columnReader interface {
	TargetColumns(ctx context.Context, table string) (columns, required []string, err error)
}

// fitTargets tells each rule what its target table has, before Prepare
// checks the rule against it: a column a copy-every-column rule would copy
// but the target lacks is left out (so that the rest of the row flows), and
// required target columns are noted so that an update leaving one out is
// completed from the source. It returns the left-out columns by source
// table. A table whose columns cannot be read is left as it is: Prepare
// then reports why.
func fitTargets(ctx context.Context, tables []sourceTable, writers map[string]replicator.Writer, logger *slog.Logger) map[string][]string {
	leftOut := map[string][]string{}
	for _, t := range tables {
		r, ok := writers[t.rule.Target].(columnReader)
		if !ok {
			continue
		}
		columns, required, err := r.TargetColumns(ctx, t.rule.Table)
		if err != nil {
			logger.Debug("cannot read the target table's columns", "table", t.rule.Table, "err", err)
			continue
		}
		t.rule.TargetColumns = setOf(columns)
		t.rule.Required = setOf(required)
		if !t.rule.AllColumns {
			continue
		}
		kept := t.rule.Columns[:0:0]
		for _, c := range t.rule.Columns {
			if t.rule.TargetColumns[c.Target] || slices.Contains(t.rule.Key, c.Source) {
				kept = append(kept, c)
				continue
			}
			leftOut[t.rule.Source] = append(leftOut[t.rule.Source], c.Source)
		}
		t.rule.Columns = kept
		if cols := leftOut[t.rule.Source]; len(cols) > 0 {
			logger.Warn("source columns are not in the target table; leaving them out (add them to the target table and restart to copy them)",
				"table", t.rule.Source, "target_table", t.rule.Table, "columns", cols)
		}
	}
	return leftOut
}

func setOf(names []string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	return set
}
