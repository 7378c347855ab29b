package app

import (
	"context"
	"fmt"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/pipeline"
)

// Empty empties a table (on_truncate: empty) only while the lease holds,
// like Write.
func (f fencedWriter) Empty(ctx context.Context, t replicator.TableSpec) error {
	e, ok := f.w.(pipeline.Emptier)
	if !ok {
		return fmt.Errorf("the target cannot empty table %s: use on_truncate: halt or ignore", t.Table)
	}
	if err := f.l.lost(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(f.l.fence, cancel)
	defer stop()
	err := e.Empty(ctx, t)
	if cause := f.l.lost(); cause != nil && err != nil {
		return cause
	}
	return err
}
