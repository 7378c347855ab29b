package apicall

import (
	"log/slog"
	"net/http"

	"github.com/replicator-cdc/replicator/metrics"
)

// Deps are what a target writer built on this package is given; all
// optional. Both writers take the same ones.
type Deps struct {
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Metrics defaults to series on a private registry.
	Metrics *metrics.Target
	// HTTPClient defaults to a client with its own transport; per-call
	// timeouts come from the target's request_timeout either way.
	HTTPClient *http.Client
	// TableHealth is told when a table starts failing as a whole (its
	// writes wait) and, with a nil error, when it recovers.
	TableHealth func(table string, err error)
	// Limiter is the quota of the writer's credential when other writers
	// share it (another target with the same app, token or key); nil: a
	// quota of the writer's own at its requests_per_second.
	Limiter *Limiter
}
