package feishu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/metrics"
	"github.com/replicator-cdc/replicator/targets/apicall"
	"github.com/replicator-cdc/replicator/targets/isolate"
)

// Writer applies batches to one Feishu workspace. It is safe for concurrent
// use; all its tables, the snapshot and the stream share one rate limiter,
// one throttling pause and one token.
type Writer struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics.Target
	http    *http.Client
	api     *apicall.Client // every request of the app: one limiter, one pause
	tokens  apicall.Credential
	base    string // the workspace's API root
	health  *isolate.Health
	schemas schemas   // from Preflight: values are checked against the column types
	bodies  sync.Pool // request bodies for reuse, as *[]byte
}

var _ replicator.Writer = (*Writer)(nil)

// New checks cfg and builds a writer. With OAuth it loads the saved token
// file, which wins over cfg.OAuth.RefreshToken.
func New(cfg Config, deps Deps) (*Writer, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	w := &Writer{
		cfg:  cfg,
		log:  deps.Logger,
		m:    deps.Metrics,
		http: deps.HTTPClient,
		base: strings.TrimSuffix(cfg.BaseURL, "/") + "/open-apis/apaas/v1/workspaces/" + url.PathEscape(cfg.WorkspaceID),
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.log = w.log.With("target", cfg.Name)
	if w.m == nil {
		w.m = metrics.NewTarget(prometheus.NewRegistry())
	}
	w.health = isolate.NewHealth(cfg.Name, w.log, w.m.TableFailing, deps.TableHealth)
	if w.http == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = cfg.MaxConcurrentRequests + 1
		w.http = &http.Client{Transport: t}
	}
	var tokens apicall.Credential = fixedToken{name: cfg.Name, tok: cfg.UserAccessToken}
	if cfg.UserAccessToken == "" {
		o, err := newOAuthTokens(&w.cfg, newTokenClient(&w.cfg, w.http, w.log, w.m))
		if err != nil {
			return nil, err
		}
		tokens = o
	}
	w.tokens = tokens
	w.api = apicall.New(apicall.Config{
		Name: cfg.Name, What: fmt.Sprintf("feishu target %q", cfg.Name), HTTP: w.http,
		Limiter: deps.Limiter, RequestsPerSecond: cfg.RequestsPerSecond, Credential: tokens, Metrics: w.m, Log: w.log,
		Timeout: cfg.RequestTimeout, RetryMin: cfg.RetryMin, RetryMax: cfg.RetryMax, ProbeMax: cfg.ProbeMax,
		MaxRetries: cfg.MaxRetries, MaxAnswerBytes: maxAnswerBytes, MaxInFlight: cfg.MaxConcurrentRequests,
	})
	return w, nil
}

// Close stops what the writer runs in the background (its quota's stall
// watcher) and waits for it; call it once its writes are over.
func (w *Writer) Close() { w.api.Close() }

// MaxConcurrentRequests is how many requests may be in flight at once; the
// pipeline writes that many key-disjoint batches concurrently.
func (w *Writer) MaxConcurrentRequests() int { return w.cfg.MaxConcurrentRequests }

// Backlog is how many requests of the credential queue for its rate limit;
// the pipeline holds batches back while they do, so that they fill up.
func (w *Writer) Backlog() (n int, changed <-chan struct{}) { return w.api.Backlog() }

// Write applies the batch: every record is confirmed or returned as a
// rejection. Requests run concurrently (up to max_concurrent_requests, the
// client's bound for all tables together), which is safe because
// a batch holds at most one record per key.
func (w *Writer) Write(ctx context.Context, b replicator.Batch) ([]replicator.Rejection, error) {
	recs, stripped, refused := w.checkValues(ctx, &b)
	b.Records = recs
	jobs, rejected := plan(&b, w.cfg.MaxBatchRows, w.cfg.MaxFilterLength)
	rejected = append(rejected, refused...)
	var p pinned
	rej, err := w.runAll(ctx, &b.Table, jobs, &p)
	if err != nil {
		return nil, err
	}
	rejected = append(rejected, rej...)
	if aside := p.setAside(); len(aside) > 0 {
		jobs, _ := plan(&replicator.Batch{Table: b.Table, Records: aside}, w.cfg.MaxBatchRows, w.cfg.MaxFilterLength)
		rej, err := w.runAll(ctx, &b.Table, jobs, nil)
		if err != nil {
			return nil, err
		}
		rejected = append(rejected, rej...)
	}
	return settle(rejected, stripped), nil
}

// runAll runs jobs, max_concurrent_requests at a time. With p, rows carrying a value
// PostgreSQL refused earlier in the batch are set aside in p.
func (w *Writer) runAll(ctx context.Context, t *replicator.TableSpec, jobs []job, p *pinned) ([]replicator.Rejection, error) {
	var (
		mu       sync.Mutex
		rejected []replicator.Rejection
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(w.cfg.MaxConcurrentRequests)
	for _, j := range jobs {
		g.Go(func() error {
			if p != nil {
				if j.recs = p.sift(j.recs); len(j.recs) == 0 {
					return nil
				}
			}
			rej, err := w.run(gctx, t, j, p)
			mu.Lock()
			rejected = append(rejected, rej...)
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return rejected, nil
}

// run sends one job. A refused row is rejected only on evidence that
// isolates it (see package isolate); an answer about the table or the
// request makes the job wait and go again, so a table that is missing or
// refused for a while never turns good rows into dead letters.
func (w *Writer) run(ctx context.Context, t *replicator.TableSpec, j job, p *pinned) ([]replicator.Rejection, error) {
	rej, err := isolate.Run(ctx, &jobTarget{w: w, t: t, op: j.op, pinned: p}, j.recs, isolate.Options{
		Table: t.Table, Health: w.health, RetryMin: w.cfg.RetryMin, RetryMax: w.cfg.RetryMax, MaxRetries: w.cfg.MaxRetries,
	})
	var failing *isolate.FailingError
	if errors.As(err, &failing) {
		return nil, fmt.Errorf("feishu target %q: %s %s: %w: check workspace_id, that the table exists under this name and that the app may write it, or raise max_retries", w.cfg.Name, j.op, t.Table, err)
	}
	if err != nil {
		return nil, err
	}
	out := make([]replicator.Rejection, len(rej))
	for i, r := range rej {
		w.log.Warn("feishu rejected a record", "table", t.Table, "operation", j.op.String(), "error", r.Reason)
		out[i] = replicator.Rejection{Record: r.Item, Reason: fmt.Sprintf("feishu rejected the %s: %s", j.op, r.Reason)}
	}
	return out, nil
}

// jobTarget is one table and operation, for package isolate.
type jobTarget struct {
	w      *Writer
	t      *replicator.TableSpec
	op     replicator.Op
	pinned *pinned // nil: learn nothing
}

func (jt *jobTarget) Send(ctx context.Context, recs []replicator.Record) (isolate.Answer, error) {
	w := jt.w
	c := w.request(jt.t, job{op: jt.op, recs: recs})
	_, err := w.do(ctx, c)
	var rej *rejectError
	switch {
	case err == nil:
		w.recycle(c.body)
		w.m.Rows.WithLabelValues(w.cfg.Name, jt.t.Table, jt.op.String()).Add(float64(len(recs)))
		return isolate.Answer{Kind: isolate.Landed}, nil
	case !errors.As(err, &rej):
		return isolate.Answer{}, err
	}
	a, refused := verdict(rej.apiError, recs)
	if refused.column != "" && jt.pinned != nil {
		jt.pinned.add(refused.column, refused.value)
	}
	w.m.Errors.WithLabelValues(w.cfg.Name, scopeReason(a.Kind)).Inc()
	if a.Kind != isolate.TableFailing && len(a.Bad) == 0 && len(recs) > 1 {
		w.log.Info("feishu refused a request without naming a row; splitting it to isolate the bad rows",
			"table", jt.t.Table, "operation", jt.op.String(), "rows", len(recs), "error", rej.apiError.Error())
	}
	return a, nil
}

// Probe reads the table's schema: an answer that involves no row.
func (jt *jobTarget) Probe(ctx context.Context) (isolate.Answer, error) {
	w := jt.w
	_, err := w.do(ctx, call{op: "schema", table: jt.t.Table, method: http.MethodGet, path: "/tables/" + url.PathEscape(jt.t.Table)})
	var rej *rejectError
	switch {
	case err == nil:
		return isolate.Answer{Kind: isolate.Landed}, nil
	case errors.As(err, &rej):
		w.m.Errors.WithLabelValues(w.cfg.Name, "table").Inc()
		return isolate.Answer{Kind: isolate.TableFailing, Reason: rej.apiError.Error()}, nil
	}
	return isolate.Answer{}, err
}

// request builds the API call for a job.
func (w *Writer) request(t *replicator.TableSpec, j job) call {
	c := call{op: j.op.String(), table: t.Table, path: "/tables/" + url.PathEscape(t.Table) + "/records", rows: len(j.recs)}
	if j.op == replicator.OpDelete {
		c.method = http.MethodDelete
		c.query = url.Values{"filter": {deleteFilter(t.Key, j.recs)}}
		return c
	}
	c.method = http.MethodPost
	c.prefer = "resolution=merge-duplicates"
	c.query = url.Values{"columns": {columnList(&j.recs[0])}, "on_conflict": {strings.Join(t.Key, ",")}}
	c.body = appendUpsertBody(w.bodyBuffer(), j.recs)
	return c
}
