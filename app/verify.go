package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/mapping"
	"github.com/replicator-cdc/replicator/metrics"
	"github.com/replicator-cdc/replicator/replication"
	"github.com/replicator-cdc/replicator/state"
	"github.com/replicator-cdc/replicator/targets/feishu"
)

// VerifyOptions are verify's flags.
type VerifyOptions struct {
	// Tables limits the check to these mapped source tables; empty: all.
	Tables []string
	// Repair writes what makes the target equal to the source.
	Repair bool
	// Settle bounds each wait for a running daemon to confirm the position a
	// read reached; default 10s.
	Settle time.Duration
	// Rounds bounds the re-checks of rows that changed while being compared;
	// default 5.
	Rounds int
	// Examples is how many keys of each kind of difference a report lists;
	// default 5.
	Examples int
}

func (o *VerifyOptions) defaults() {
	if o.Settle <= 0 {
		o.Settle = 10 * time.Second
	}
	if o.Rounds <= 0 {
		o.Rounds = 5
	}
	if o.Examples <= 0 {
		o.Examples = 5
	}
}

// tableReader reads a target table back and renders records the way its
// writer sends them (implemented by the Feishu and GPTBots writers).
type tableReader interface {
	ReadRows(ctx context.Context, table string, each func(map[string]any) error) error
	ReadKeys(ctx context.Context, spec replicator.TableSpec, recs []replicator.Record, each func(map[string]any) error) error
	Render(spec replicator.TableSpec, rec *replicator.Record) (map[string]any, error)
}

// Verify compares every mapped table (or opts.Tables) with its target and,
// with opts.Repair, writes what converges the target. Its error is about
// verifying itself; differences are in the report.
func Verify(ctx context.Context, cfg *config.Config, deps Deps, opts VerifyOptions) (*VerifyReport, error) {
	opts.defaults()
	conn, err := replication.ConnectSQL(ctx, cfg.Source.DSN)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	all, err := resolve(ctx, conn, cfg)
	if err != nil {
		return nil, err
	}
	tables, err := chosen(all, opts.Tables)
	if err != nil {
		return nil, err
	}
	docs, closeDocs, err := SharedDocs(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer closeDocs()
	cfg, err = borrowTokens(ctx, conn, cfg, docs)
	if err != nil {
		return nil, err
	}
	writers, closeWriters, err := buildWriters(cfg, deps, metrics.NewTarget(prometheus.NewRegistry()), cfg.State.Dir, docs, nil)
	if err != nil {
		return nil, err
	}
	defer closeWriters()
	if err := prepareTargets(ctx, tables, writers); err != nil {
		return nil, err
	}
	types := &replication.TypeCatalog{Conn: conn}
	report := &VerifyReport{}
	for _, t := range tables {
		w := writers[t.rule.Target]
		rd, ok := w.(tableReader)
		if !ok {
			return nil, fmt.Errorf("target %s cannot read its tables back", t.rule.Target)
		}
		compiled, err := mapping.Compile(t.rule, &t.info.Relation, types, deps.Logger)
		if err != nil {
			return nil, err
		}
		v := &verifier{conn: conn, slot: cfg.Source.Slot, chunk: cfg.Pipeline.SnapshotChunkRows, opts: opts,
			t: compiled, info: t.info, spec: t.rule.Spec(), rd: rd, w: w}
		tr, err := v.run(ctx)
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", t.rule.Source, err)
		}
		report.Tables = append(report.Tables, *tr)
	}
	return report, nil
}

func chosen(all []sourceTable, names []string) ([]sourceTable, error) {
	if len(names) == 0 {
		return all, nil
	}
	var out []sourceTable
	for _, n := range names {
		i := slices.IndexFunc(all, func(t sourceTable) bool { return t.rule.Source == n })
		if i < 0 {
			return nil, fmt.Errorf("--table %s is not a mapped source table (name it as in the configuration, e.g. public.customers)", n)
		}
		out = append(out, all[i])
	}
	return out, nil
}

// verifier checks one table.
type verifier struct {
	conn  *pgx.Conn
	slot  string
	chunk int
	opts  VerifyOptions
	t     *mapping.Table
	info  *replication.TableInfo
	spec  replicator.TableSpec
	rd    tableReader
	w     replicator.Writer
}

// srcRow is one source row, mapped and rendered as its writer sends it.
type srcRow struct {
	rec      replicator.Record
	keyText  [][]byte
	rendered map[string]any
}

// candidate is a key found different once, to be checked again.
type candidate struct {
	keyRec  replicator.Record // Key only: addresses the target row
	keyText [][]byte          // the source key columns' text
}

func (v *verifier) run(ctx context.Context) (*TableReport, error) {
	rep := &TableReport{Source: v.t.Rule.Source, Target: v.t.Rule.Target, Table: v.spec.Table, examples: v.opts.Examples}
	src, lsn, err := v.readSource(ctx)
	if err != nil {
		return nil, err
	}
	rep.SourceRows = len(src)
	caughtUp, err := v.waitDaemon(ctx, lsn)
	if err != nil {
		return nil, err
	}
	rep.Lagging = !caughtUp
	cands := map[string]candidate{}
	seen := make(map[string]bool, len(src))
	err = v.rd.ReadRows(ctx, v.spec.Table, func(row map[string]any) error {
		rep.TargetRows++
		k := targetKey(v.spec.Key, row)
		s, ok := src[k]
		switch {
		case !ok:
			if c, ok := v.extraCandidate(row); ok {
				cands[k] = c
			}
		case seen[k]:
			// A second target row with one key: the key is not unique there.
			cands[k] = candidate{keyRec: replicator.Record{Key: s.rec.Key}, keyText: s.keyText}
		default:
			seen[k] = true
			if len(differing(s.rendered, row)) > 0 {
				cands[k] = candidate{keyRec: replicator.Record{Key: s.rec.Key}, keyText: s.keyText}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for k, s := range src {
		if !seen[k] {
			cands[k] = candidate{keyRec: replicator.Record{Key: s.rec.Key}, keyText: s.keyText}
		}
	}
	rep.Rechecked = len(cands)
	for round := 0; round < v.opts.Rounds && len(cands) > 0; round++ {
		if cands, err = v.recheck(ctx, cands, rep); err != nil {
			return nil, err
		}
	}
	rep.Unsettled = len(cands)
	if v.opts.Repair {
		if err := v.repair(ctx, rep); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// extraCandidate addresses a target row the source lacks. Under on_delete
// ignore or soft such rows are the policy's doing, not drift.
func (v *verifier) extraCandidate(row map[string]any) (candidate, bool) {
	if v.t.Rule.OnDelete == mapping.DeleteIgnore || v.t.Rule.OnDelete == mapping.DeleteSoft {
		return candidate{}, false
	}
	c := candidate{}
	for _, k := range v.spec.Key {
		val := valueOf(row[k])
		c.keyRec.Key = append(c.keyRec.Key, replicator.Field{Name: k, Value: val})
		c.keyText = append(c.keyText, val.Raw)
	}
	return c, true
}

// readSource reads the whole table in one repeatable-read snapshot, and the
// WAL position once it is read: every change the snapshot shows is at or
// before it.
func (v *verifier) readSource(ctx context.Context) (map[string]*srcRow, string, error) {
	tx, err := replication.BeginSnapshot(ctx, v.conn, "")
	if err != nil {
		return nil, "", err
	}
	defer tx.Rollback(context.Background())
	out := map[string]*srcRow{}
	chunk := max(v.chunk, 100)
	var after [][]byte
	for {
		rows, err := replication.ReadChunk(ctx, tx, v.info, v.t.KeyColumns(), after, chunk, v.t.Mapped)
		if err != nil {
			return nil, "", err
		}
		if err := v.addRows(out, rows); err != nil {
			return nil, "", err
		}
		if len(rows) < chunk {
			break
		}
		after = v.t.KeyText(rows[len(rows)-1])
	}
	lsn, err := replication.VisiblePosition(ctx, tx)
	if err != nil {
		return nil, "", err
	}
	return out, lsn, nil
}

// readKeys reads the current rows of the given source keys.
func (v *verifier) readKeys(ctx context.Context, keys [][][]byte) (map[string]*srcRow, error) {
	out := map[string]*srcRow{}
	for part := range slices.Chunk(keys, 500) {
		rows, err := replication.ReadKeys(ctx, v.conn, v.info, v.t.KeyColumns(), part)
		if err != nil {
			return nil, err
		}
		if err := v.addRows(out, rows); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (v *verifier) addRows(out map[string]*srcRow, rows [][]replicator.Cell) error {
	for _, cells := range rows {
		rec, err := v.t.Upsert(cells, 0)
		if _, ok := errors.AsType[*mapping.RowError](err); ok {
			continue // a NULL or unencodable key: dead-lettered, never mirrored
		}
		if err != nil {
			return err
		}
		rendered, err := v.rd.Render(v.spec, &rec)
		if err != nil {
			return err
		}
		keyVals, err := v.rd.Render(v.spec, &replicator.Record{Fields: rec.Key})
		if err != nil {
			return err
		}
		out[targetKey(v.spec.Key, keyVals)] = &srcRow{rec: rec, keyText: v.t.KeyText(cells), rendered: rendered}
	}
	return nil
}

// waitDaemon waits, at most Settle, until a running daemon's slot has
// confirmed lsn: from then on the target holds every change up to it. It
// returns false at once when no daemon streams from the slot.
func (v *verifier) waitDaemon(ctx context.Context, lsn string) (bool, error) {
	deadline := time.Now().Add(v.opts.Settle)
	for {
		var active, done bool
		err := v.conn.QueryRow(ctx, "SELECT active, coalesce(confirmed_flush_lsn >= $2::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = $1", v.slot, lsn).Scan(&active, &done)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read the slot's position: %w", err)
		}
		if done {
			return true, nil
		}
		if !active || time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// borrowMinValid is how long a borrowed Feishu access token must still be
// valid when verify starts.
const borrowMinValid = 10 * time.Minute

// borrowTokens makes each Feishu OAuth target use the access token the
// daemon saved, so that verify never refreshes beside a running daemon:
// refresh tokens are single-use, and verify's refresh would spend the
// daemon's. Without a saved token valid long enough it refreshes like the
// daemon only when no daemon streams from the slot.
func borrowTokens(ctx context.Context, conn *pgx.Conn, cfg *config.Config, docs state.Docs) (*config.Config, error) {
	out := *cfg
	out.Targets = maps.Clone(cfg.Targets)
	for name, t := range cfg.Targets {
		if t.Feishu == nil || !t.Feishu.UsesOAuth() {
			continue
		}
		c := *t.Feishu
		c.StateDir, c.Tokens = cfg.State.Dir, docs
		borrowed, err := feishu.BorrowSavedToken(c, borrowMinValid, time.Now())
		if errors.Is(err, feishu.ErrNoBorrowableToken) {
			var active bool
			qerr := conn.QueryRow(ctx, "SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = $1", cfg.Source.Slot).Scan(&active)
			if qerr != nil {
				return nil, fmt.Errorf("read the slot's state: %w", qerr)
			}
			if active {
				return nil, fmt.Errorf("%w; the running daemon refreshes it before it expires: run verify again in a few minutes", err)
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		tc := *t
		tc.Feishu = &borrowed
		out.Targets[name] = &tc
	}
	return &out, nil
}
