// Package gptbots writes batches to GPTBots Agent database tables: upserts
// through the update call with is_create and a filter on the table's unique
// key field, deletes through the delete call with the same filter. Values
// are encoded by the target field's type, read from the table at Prepare.
// Calls share one rate limiter and throttling pause per writer (per API
// key), are retried with backoff while
// the failure is transient, and items the API refuses come back as
// rejections while the rest of the batch lands.
package gptbots

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/metrics"
	"github.com/replicator-cdc/replicator/targets/apicall"
	"github.com/replicator-cdc/replicator/targets/isolate"
)

// Writer is a replicator.Writer for one GPTBots API key.
type Writer struct {
	cfg     Config
	loc     *time.Location
	log     *slog.Logger
	metrics *metrics.Target
	client  *http.Client
	api     *apicall.Client // every call of the API key: one limiter, one pause
	header  http.Header     // of every call: the key and the content type
	health  *isolate.Health

	mu     sync.RWMutex
	tables map[string]*schema
}

var _ replicator.Writer = (*Writer)(nil)

// New checks the configuration and returns a writer; it makes no call.
func New(cfg Config, deps Deps) (*Writer, error) {
	cfg.defaults()
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	loc, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	w := &Writer{
		cfg:     cfg,
		loc:     loc,
		log:     deps.Logger,
		metrics: deps.Metrics,
		client:  deps.HTTPClient,
		tables:  map[string]*schema{},
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.log = w.log.With("target", cfg.Name)
	if w.metrics == nil {
		w.metrics = metrics.NewTarget(prometheus.NewRegistry())
	}
	if w.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = cfg.MaxConcurrentRequests + 1
		w.client = &http.Client{Transport: t}
	}
	w.health = isolate.NewHealth(cfg.Name, w.log, w.metrics.TableFailing, deps.TableHealth)
	w.header = http.Header{"Authorization": {"Bearer " + cfg.APIKey}, "Content-Type": {"application/json"}}
	w.api = apicall.New(apicall.Config{
		Name: cfg.Name, What: fmt.Sprintf("gptbots target %q", cfg.Name), HTTP: w.client,
		Limiter: deps.Limiter, RequestsPerSecond: cfg.RequestsPerSecond, Metrics: w.metrics, Log: w.log,
		Timeout: cfg.RequestTimeout, RetryMin: cfg.BackoffMin, RetryMax: cfg.BackoffMax, ProbeMax: cfg.ProbeMax,
		MaxRetries: cfg.MaxRetries, MaxAnswerBytes: maxAnswerBytes, MaxInFlight: cfg.MaxConcurrentRequests,
	})
	return w, nil
}

// Close stops what the writer runs in the background (its quota's stall
// watcher) and waits for it; call it once its writes are over.
func (w *Writer) Close() { w.api.Close() }

// MaxConcurrentRequests is how many calls may be in flight at once; the
// pipeline writes that many key-disjoint batches concurrently.
func (w *Writer) MaxConcurrentRequests() int { return w.cfg.MaxConcurrentRequests }

// Backlog is how many calls of the credential queue for its rate limit;
// the pipeline holds batches back while they do, so that they fill up.
func (w *Writer) Backlog() (n int, changed <-chan struct{}) { return w.api.Backlog() }

// Prepare implements replicator.Writer: it reads each table's fields and
// checks the mapping against them.
func (w *Writer) Prepare(ctx context.Context, tables []replicator.TableSpec) error {
	for _, spec := range tables {
		s, err := w.readSchema(ctx, spec)
		if err != nil {
			return err
		}
		w.mu.Lock()
		w.tables[spec.Table] = s
		w.mu.Unlock()
		w.log.Info("gptbots table ready", "table", spec.Table, "source", spec.Source, "key", s.key, "fields", len(s.types))
	}
	return nil
}

// Write implements replicator.Writer. Deletes go first, then upserts; the
// batch holds one record per key, so their order does not matter.
func (w *Writer) Write(ctx context.Context, b replicator.Batch) ([]replicator.Rejection, error) {
	w.mu.RLock()
	s := w.tables[b.Table.Table]
	w.mu.RUnlock()
	if s == nil {
		return nil, fmt.Errorf("gptbots target %q: table %s was not prepared", w.cfg.Name, b.Table.Table)
	}
	var rejected []replicator.Rejection
	var upserts, deletes []item
	for i := range b.Records {
		rec := &b.Records[i]
		var it item
		var err error
		switch rec.Op {
		case replicator.OpUpsert:
			var refused []replicator.Rejection
			it, refused, err = s.upsertItem(rec, w.loc)
			rejected = append(rejected, refused...)
			w.metrics.Errors.WithLabelValues(w.cfg.Name, apicall.ReasonUnencodable).Add(float64(len(refused)))
		case replicator.OpDelete:
			it, err = s.deleteItem(rec, w.loc)
		default:
			err = fmt.Errorf("unknown operation %s", rec.Op)
		}
		switch {
		case err != nil:
			rejected = append(rejected, replicator.Rejection{Record: *rec, Reason: "cannot encode for GPTBots: " + replicator.Abbreviate(err.Error(), maxReasonBytes)})
			w.metrics.Errors.WithLabelValues(w.cfg.Name, apicall.ReasonUnencodable).Inc()
		case rec.Op == replicator.OpDelete:
			deletes = append(deletes, it)
		default:
			upserts = append(upserts, it)
		}
	}
	for _, step := range []struct {
		op    string
		items []item
	}{{opDelete, deletes}, {opUpsert, upserts}} {
		if len(step.items) == 0 {
			continue
		}
		rej, err := w.write(ctx, s, w.request(step.op, s.spec.Table), step.items)
		if err != nil {
			return nil, err
		}
		rejected = append(rejected, rej...)
	}
	if len(rejected) > 0 {
		w.log.Warn("gptbots rejected records", "table", s.spec.Table, "rejected", len(rejected), "records", len(b.Records), "first_reason", replicator.Abbreviate(rejected[0].Reason, maxReasonBytes))
	}
	return rejected, nil
}
