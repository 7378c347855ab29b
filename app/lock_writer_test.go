package app

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
)

type boundedWriter struct{ n int }

func (boundedWriter) Prepare(context.Context, []replicator.TableSpec) error { return nil }
func (boundedWriter) Write(context.Context, replicator.Batch) ([]replicator.Rejection, error) {
	return nil, nil
}
func (b boundedWriter) MaxConcurrentRequests() int { return b.n }

// The fence around the writers must not hide their bound on requests in
// flight: the pipeline asks the writer it is given (pipeline/dispatch.go),
// and without it every table would send one batch at a time.
func TestFencedWriterKeepsTheConcurrencyBound(t *testing.T) {
	var w replicator.Writer = fencedWriter{w: boundedWriter{n: 16}}
	c, ok := w.(interface{ MaxConcurrentRequests() int })
	require.True(t, ok, "fencedWriter hides MaxConcurrentRequests")
	require.Equal(t, 16, c.MaxConcurrentRequests())
}
