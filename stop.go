package replicator

import (
	"context"
	"errors"
)

// IsCleanStop says err only reports the stop that was asked for: it is, or
// wraps, context.Canceled, and ctx (the caller's own context) has ended.
// A cancellation while ctx is still live came from elsewhere (a library,
// a connection closed under us) and is a failure to report, not a stop.
func IsCleanStop(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled)
}
