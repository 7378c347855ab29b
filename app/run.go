// Package app wires the daemon together: configuration to source, mapping,
// pipeline and target writers. Run is the whole daemon, callable from tests.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/mapping"
	"github.com/replicator-cdc/replicator/metrics"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/pipeline"
	"github.com/replicator-cdc/replicator/replication"
	"github.com/replicator-cdc/replicator/state"
	"github.com/replicator-cdc/replicator/targets/backoff"
)

// Deps are what Run takes from its caller rather than from configuration.
type Deps struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// Monitor collects live figures; Run makes one on Registry when nil.
	Monitor *monitor.Monitor
	// Writers replaces the writer of the named targets (tests).
	Writers map[string]replicator.Writer
	// Progress, when set (a terminal), shows a snapshot progress bar.
	Progress io.Writer
	// DryRun, when set, receives the writes as JSON lines instead of the
	// targets; nothing is acknowledged and the state directory is not
	// changed.
	DryRun io.Writer
	// AfterResyncRead, when set, runs after an online resync read a chunk
	// and before its high watermark (tests: changes inside the window).
	AfterResyncRead func(source string, chunk int)
}

// Run mirrors the configured tables until ctx ends (a clean stop returns
// nil) or a fatal error.
func Run(ctx context.Context, cfg *config.Config, deps Deps) error {
	err := run(ctx, cfg, deps)
	if replicator.IsCleanStop(ctx, err) {
		// Asked to stop while starting up: whatever was under way was cut
		// short, nothing was acknowledged that was not written.
		deps.Logger.Info("stopped", "during", "start-up")
		return nil
	}
	return err
}

func run(ctx context.Context, cfg *config.Config, deps Deps) error {
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.Monitor == nil {
		deps.Monitor = monitor.New(deps.Registry)
	}
	targetMetrics := metrics.NewTarget(deps.Registry)
	instance := InstanceID()
	return lead(ctx, cfg, deps, instance, func(ctx context.Context, l *lease) error {
		return serve(ctx, cfg, deps, l, instance, targetMetrics)
	})
}

// serve is one turn as the active instance. It reloads what another
// instance may have changed since the last: the state and the tokens.
func serve(ctx context.Context, cfg *config.Config, deps Deps, l *lease, instance string, targetMetrics *metrics.Target) error {
	logger, mon := deps.Logger, deps.Monitor
	docs, err := stateDocs(ctx, cfg, l, instance)
	if err != nil {
		return err
	}
	store, err := openState(cfg.State.Dir, docs, deps.DryRun != nil)
	if err != nil {
		return err
	}
	writers, closeWriters, err := buildWriters(cfg, deps, targetMetrics, store.Dir(), docs, l)
	if err != nil {
		return err
	}
	defer closeWriters()
	a := &attempt{cfg: cfg, deps: deps, store: store, writers: writers, lease: l}
	failures, lastErr := 0, ""
	for {
		a.streamed = false
		err := a.run(ctx)
		// At start-up as later, only what a person must fix stops the
		// daemon: a server that is down, restarting or refusing
		// connections is waited for.
		if err == nil || ctx.Err() != nil || !transientSource(err) {
			return explainFatal(err)
		}
		if a.streamed {
			failures = 0
		}
		failures++
		wait := backoff.Delay(time.Second, 30*time.Second, failures)
		mon.Reconnecting(failures, err)
		if msg := err.Error(); msg != lastErr {
			logger.Warn("cannot reach PostgreSQL (or a target at start-up); reconnecting and resuming from the acknowledged position", "error", err, "attempt", failures, "wait", wait)
			lastErr = msg
		} else {
			logger.Debug("reconnecting", "error", err, "attempt", failures, "wait", wait)
		}
		if err := backoff.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// attempt is one connection to the source, from connecting to the end of
// streaming. What outlives a lost connection (the state, the writers and
// their tokens, the metrics) is built once, before the first.
type attempt struct {
	cfg     *config.Config
	deps    Deps
	store   *state.Store
	writers map[string]replicator.Writer
	// lease is the lock that lets this instance write.
	lease *lease
	// tables are resolved and the targets prepared on the first attempt.
	tables []sourceTable
	// streamed says this attempt reached the stream, so backoff restarts.
	streamed bool
}

func (a *attempt) run(ctx context.Context) error {
	cfg, deps, store, writers, logger, mon := a.cfg, a.deps, a.store, a.writers, a.deps.Logger, a.deps.Monitor
	conn, err := replication.ConnectSQL(ctx, cfg.Source.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if a.tables == nil {
		tables, err := resolve(ctx, conn, cfg)
		if err != nil {
			return err
		}
		for _, t := range tables {
			for _, msg := range t.warnings {
				logger.Warn(msg)
			}
		}
		leftOut := fitTargets(ctx, tables, writers, logger)
		if err := prepareTargets(ctx, tables, writers); err != nil {
			return err
		}
		for _, t := range tables {
			mon.AddTable(t.rule.Source, t.rule.Target, t.rule.Table)
			if cols := leftOut[t.rule.Source]; len(cols) > 0 {
				mon.Error(t.rule.Source, mapping.LeftOutError(t.rule, cols))
			}
		}
		a.tables = tables
	}
	tables := a.tables
	sources, filters := publishedTables(cfg)
	if err := replication.EnsurePublication(ctx, conn, cfg.Source.Publication, sources, filters); err != nil {
		return err
	}

	repl, err := replication.ConnectReplication(ctx, cfg.Source.DSN)
	if err != nil {
		return err
	}
	streaming := false
	defer func() {
		if !streaming {
			repl.Close(context.Background())
		}
	}()
	confirmed, exported, err := ensureSlot(ctx, conn, repl, cfg.Source.Slot, store, deps.DryRun != nil, logger)
	if err != nil {
		return err
	}

	routes := make([]pipeline.Route, len(tables))
	rules := make([]*mapping.Rule, len(tables))
	for i, t := range tables {
		routes[i] = pipeline.Route{Rule: t.rule, Target: t.rule.Target, Writer: fencedWriter{w: writers[t.rule.Target], l: a.lease}}
		rules[i] = t.rule
	}
	p := pipeline.New(routes, state.OpenDeadLetters(store.Dir(), cfg.State.DeadLettersMaxBytes), mon, pipelineOptions(cfg), logger)
	defer p.Close()

	fetchConn, err := replication.ConnectSQL(ctx, cfg.Source.DSN)
	if err != nil {
		return err
	}
	defer fetchConn.Close(context.Background())
	fetcher := &replication.Fetcher{Conn: fetchConn}
	mapper := mapping.NewMapper(rules, fetcher.Fetch, logger)
	mapper.SetTypes(&replication.TypeCatalog{Conn: fetchConn})
	mapper.ResolvePartitions(func(ctx context.Context, relID uint32) ([]string, bool, error) {
		return replication.PartitionAncestors(ctx, fetchConn, relID)
	})
	mapper.NoticeWith(mon.Error)
	mapper.CatalogWith(func(table, column string) (bool, error) {
		info, err := replication.LoadTable(ctx, fetchConn, table)
		if err != nil {
			return false, err
		}
		return slices.ContainsFunc(info.Columns, func(c replicator.Column) bool { return c.Name == column }), nil
	})

	if err := markNewMappings(store, tables, exported); err != nil {
		return err
	}
	mon.Phase("snapshot")
	snap := &snapshotter{p: p, store: store, monitor: mon, progress: deps.Progress, chunkRows: cfg.Pipeline.SnapshotChunkRows, drain: cfg.Pipeline.ShutdownTimeout, logger: logger}
	if err := snap.run(ctx, conn, exported, tables, mapper); err != nil {
		if replicator.IsCleanStop(ctx, err) {
			logger.Info("stopped during the snapshot; it resumes from the last confirmed chunk")
		}
		return err
	}

	start := confirmed
	if cp := store.Checkpoint(); cp > start {
		start = cp
	}
	seen, err := seenByCopies(store, start)
	if err != nil {
		return err
	}
	wire, err := replication.StartStream(ctx, repl, cfg.Source.Slot, cfg.Source.Publication, start)
	streaming = true
	if err != nil {
		return err
	}
	defer wire.Close()
	logger.Info("streaming changes", "slot", cfg.Source.Slot, "from", start)
	mon.Phase("streaming")
	a.streamed = true
	defer mon.Phase("stopped")
	sink := pipeline.NewStreamSink(ctx, p, mapper, start, logger)
	for _, s := range seen {
		sink.SkipSeen(s.source, s.snap.Visible, s.before)
	}
	resyncs := newResyncer(ctx, cfg, store, mon, tables, mapper.Types(), deps)
	defer resyncs.stop()
	sink.Resync(resyncs.resyncs)
	resyncs.resume()
	maint := &maintenance{conn: fetchConn, slot: cfg.Source.Slot, heartbeat: cfg.Source.Heartbeat, monitor: mon, logger: logger}
	stream := &replication.Stream{
		Conn: wire, Sink: sink,
		StatusInterval: cfg.Source.StatusInterval, ShutdownTimeout: cfg.Pipeline.ShutdownTimeout,
		Checkpoint: store.SaveCheckpoint, Logger: logger, DryRun: deps.DryRun != nil,
		Maintain: maint.run,
		OnStop:   func() { mon.Phase("stopping") },
		// A stalled stream is not ready: its lag figures are stale.
		OnListening: mon.Listening,
		OnStatus: func(received, acked replicator.LSN) {
			lag := int64(0)
			if received > acked {
				lag = int64(received - acked)
			}
			mon.Position(acked.String(), lag, sink.Lag(time.Now()).Seconds())
		},
	}
	p.SetStatusUpdate(stream.UpdateStatus)
	if err := stream.Run(ctx); err != nil {
		mon.Error("", err)
		return err
	}
	return nil
}

func pipelineOptions(cfg *config.Config) pipeline.Options {
	rows := cfg.Pipeline.BatchRows
	if rows <= 0 {
		rows = 500
	}
	return pipeline.Options{
		MaxInFlightBytes: cfg.Pipeline.MaxInFlightBytes, FlushInterval: cfg.Pipeline.FlushInterval,
		BatchRows: rows, BatchBytes: cfg.Pipeline.BatchBytes, TickInterval: time.Second,
	}
}

func prepareTargets(ctx context.Context, tables []sourceTable, writers map[string]replicator.Writer) error {
	specs := map[string][]replicator.TableSpec{}
	for _, t := range tables {
		specs[t.rule.Target] = append(specs[t.rule.Target], t.rule.Spec())
	}
	var errs []error
	for name, list := range specs {
		if err := writers[name].Prepare(ctx, list); err != nil {
			errs = append(errs, fmt.Errorf("target %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// ensureSlot returns the slot's confirmed position, creating the slot (and
// forgetting all snapshot progress, since a new slot starts a new history)
// when it is missing. exported names the new slot's snapshot. A slot that
// is not the one the state followed stops the daemon (see checkSlot).
func ensureSlot(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, slot string, store *state.Store, dryRun bool, logger *slog.Logger) (confirmed replicator.LSN, exported string, err error) {
	id, err := sourceIdentity(ctx, conn, repl)
	if err != nil {
		return 0, "", err
	}
	if err := waitSlotFree(ctx, conn, slot, logger); err != nil {
		return 0, "", err
	}
	confirmed, found, err := replication.SlotPosition(ctx, conn, slot)
	if err != nil {
		return 0, "", err
	}
	if found {
		if store.Slot() != slot {
			if store.Slot() != "" {
				logger.Warn("state directory belongs to another slot; copying every table again", "slot", slot, "state_slot", store.Slot())
			}
			return confirmed, "", store.Bind(slot, id, confirmed)
		}
		if err := checkSlot(store, slot, id, confirmed); err != nil {
			return 0, "", err
		}
		if store.Identity() == nil {
			return confirmed, "", store.SetIdentity(id)
		}
		return confirmed, "", nil
	}
	if store.Slot() == slot && store.Checkpoint() != 0 {
		return 0, "", fmt.Errorf("%w: slot %s, which the state followed up to %s, no longer exists (someone dropped it, or the server was replaced); the changes since are gone. Empty the target tables, run 'replicator resync --config FILE --all', then start again: the slot is created anew and every table copied (docs/production.md, \"A moved or re-created slot\")",
			errSlotLost, slot, store.Checkpoint())
	}
	created, err := replication.CreateSlot(ctx, repl, slot, dryRun)
	if err != nil {
		return 0, "", err
	}
	if err := store.Bind(slot, id, created.ConsistentPoint); err != nil {
		return 0, "", err
	}
	logger.Info("created replication slot", "slot", slot, "consistent_point", created.ConsistentPoint)
	return created.ConsistentPoint, created.SnapshotName, nil
}
