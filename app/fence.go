package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/state"
	"github.com/replicator-cdc/replicator/targets/feishu"
)

// fencedWriter writes only while the lease holds: once the lock is lost,
// in-flight requests are cut and every write is refused, so that an
// instance that is no longer the active one writes nothing.
type fencedWriter struct {
	w replicator.Writer
	l *lease
}

// MaxConcurrentRequests passes the writer's bound on requests in flight on
// to the pipeline, which would otherwise send one batch at a time.
func (f fencedWriter) MaxConcurrentRequests() int {
	if c, ok := f.w.(interface{ MaxConcurrentRequests() int }); ok {
		return c.MaxConcurrentRequests()
	}
	return 1
}

func (f fencedWriter) Prepare(ctx context.Context, tables []replicator.TableSpec) error {
	return f.w.Prepare(ctx, tables)
}

func (f fencedWriter) Write(ctx context.Context, b replicator.Batch) ([]replicator.Rejection, error) {
	if err := f.l.lost(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(f.l.fence, cancel)
	defer stop()
	rejected, err := f.w.Write(ctx, b)
	if cause := f.l.lost(); cause != nil && err != nil {
		return nil, cause
	}
	return rejected, err
}

// fencedDocs saves documents only while the lease holds.
type fencedDocs struct {
	state.Docs
	l *lease
}

func (f fencedDocs) Save(name string, data []byte) error {
	if err := f.l.lost(); err != nil {
		return fmt.Errorf("state: not saving %s: %w", f.Where(name), err)
	}
	return f.Docs.Save(name, data)
}

// Left is how long the lease lasts from now, or why it ended: a Feishu
// token refresh is sent only when the lease covers it and the save of its
// answer (feishu.Lease).
func (l *lease) Left() (time.Duration, error) {
	if err := l.lost(); err != nil {
		return 0, err
	}
	if l.fence.Err() != nil {
		return 0, errTurnOver
	}
	return l.remaining(), nil
}

var _ feishu.Lease = (*lease)(nil)

// errTurnOver: the instance gave the lock up (it is stopping).
var errTurnOver = errors.New("this instance has given up the lock that makes it the active one")
