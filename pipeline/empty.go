package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/mapping"
)

// Emptier is a writer that can delete every row of a table, for
// on_truncate: empty.
type Emptier interface {
	Empty(ctx context.Context, table replicator.TableSpec) error
}

// Empty queues the emptying of t's target table as one item of the
// current unit, behind the table's batches before it and ahead of those
// after it: what the source wrote before its TRUNCATE is written (and
// then deleted), what it writes after lands on the emptied table.
func (p *Pipeline) Empty(ctx context.Context, t *mapping.Table) error {
	q, ok := p.queues[t.Rule]
	if !ok {
		return fmt.Errorf("pipeline: no route for %s", t.Rule.Source)
	}
	if _, ok := q.route.Writer.(Emptier); !ok {
		return fmt.Errorf("target %s cannot empty table %s (from %s): use on_truncate: halt or ignore", q.route.Target, q.spec.Table, q.spec.Source)
	}
	if q.pending != nil {
		if err := p.handOff(ctx, q); err != nil {
			return err
		}
	}
	q.pending = newBatch(0)
	q.pending.empty = true
	q.pending.units = []unitCount{{tracker: p.tracker, id: p.unit, n: 1}}
	p.uncounted++
	return p.handOff(ctx, q)
}

func (p *Pipeline) empty(q *tableQueue) error {
	err := q.route.Writer.(Emptier).Empty(p.ctx, q.spec)
	if err == nil {
		p.logger.Info("target table emptied after a TRUNCATE of its source (on_truncate: empty)", "target", q.route.Target, "table", q.spec.Table, "source", q.spec.Source)
		return nil
	}
	if errors.Is(err, context.Canceled) && p.ctx.Err() != nil {
		return err
	}
	return &TargetError{fmt.Errorf("target %s, table %s (from %s): %w", q.route.Target, q.spec.Table, q.spec.Source, err)}
}
