package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/mapping"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/pipeline"
	"github.com/replicator-cdc/replicator/replication"
	"github.com/replicator-cdc/replicator/state"
)

// snapshotter copies tables' existing rows through the pipeline in key
// order, chunk by chunk, saving after each confirmed chunk the key it
// reached, so that a crash resumes there.
type snapshotter struct {
	p         *pipeline.Pipeline
	store     *state.Store
	monitor   *monitor.Monitor
	progress  io.Writer
	chunkRows int
	drain     time.Duration
	logger    *slog.Logger
}

type chunkMark struct {
	seq     replicator.LSN
	lastKey []string
	rows    int64
}

// copyTable copies one source table into every mapping of it (ts, a
// fan-out), reading it once in the first mapping's key order; a chunk is
// confirmed when every mapping confirmed its rows.
func (s *snapshotter) copyTable(ctx context.Context, tx pgx.Tx, ts []*mapping.Table, info *replication.TableInfo) error {
	t := ts[0]
	name := t.Rule.Source
	prog := s.store.Table(name)
	if prog.Done {
		return nil
	}
	tr := pipeline.NewTracker(0)
	var after [][]byte
	for _, k := range prog.LastKey {
		after = append(after, []byte(k))
	}
	var marks []chunkMark
	rows := prog.Rows
	start, lastLog, lastBar := time.Now(), time.Now(), time.Time{}
	startRows := rows
	logger := s.logger.With("table", name, "target", t.Rule.Target)
	logger.Info("snapshot: copying table", "resume_after_rows", rows, "estimated_rows", info.EstimatedRows)

	save := func(done bool) error {
		acked := tr.Acknowledged()
		n := 0
		for n < len(marks) && marks[n].seq <= acked {
			n++
		}
		if n == 0 && !done {
			return nil
		}
		if n > 0 {
			prog.LastKey, prog.Rows = marks[n-1].lastKey, marks[n-1].rows
			marks = marks[n:]
		}
		prog.Done = done
		s.monitor.SnapshotProgress(name, prog.Rows, max(info.EstimatedRows, prog.Rows), done)
		return s.store.SaveTable(name, prog)
	}

	// A stop may cut a chunk short; only the chunks before it can settle.
	settled := func() bool { return len(marks) == 0 || tr.Acknowledged() >= marks[len(marks)-1].seq }

	for seq := replicator.LSN(1); ; seq++ {
		if ctx.Err() != nil {
			return s.interrupted(settled, save)
		}
		chunk, err := replication.ReadChunk(ctx, tx, info, t.KeyColumns(), after, s.chunkRows, mappedByAny(ts))
		if err != nil {
			if ctx.Err() != nil {
				return s.interrupted(settled, save)
			}
			return err
		}
		if len(chunk) == 0 {
			break
		}
		s.p.Begin(tr, time.Now())
		for _, cells := range chunk {
			for _, t := range ts {
				if err := s.copyRow(ctx, t, cells); err != nil {
					if ctx.Err() != nil {
						return s.interrupted(settled, save)
					}
					return err
				}
			}
		}
		s.p.Commit(seq)
		after = t.KeyText(chunk[len(chunk)-1])
		rows += int64(len(chunk))
		marks = append(marks, chunkMark{seq: seq, lastKey: keyStrings(after), rows: rows})
		if err := save(false); err != nil {
			return err
		}
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			logProgress(logger, rows, startRows, info.EstimatedRows, start)
		}
		if s.progress != nil && time.Since(lastBar) >= 200*time.Millisecond {
			lastBar = time.Now()
			drawBar(s.progress, name, rows, info.EstimatedRows)
		}
		if len(chunk) < s.chunkRows {
			break
		}
	}
	rejected, err := s.rejectNullKeys(ctx, tx, ts, info)
	if err != nil {
		if ctx.Err() != nil {
			return s.interrupted(settled, save)
		}
		return err
	}
	if err := s.p.WaitFor(ctx, tr.Idle); err != nil {
		if ctx.Err() != nil {
			return s.interrupted(settled, save)
		}
		return err
	}
	if rejected > 0 {
		logger.Warn("snapshot: rows with a NULL key column were written to the dead-letter file, not to the target", "rows", rejected)
	}
	if err := save(true); err != nil {
		return err
	}
	if s.progress != nil {
		drawBar(s.progress, name, rows, rows)
		fmt.Fprintln(s.progress)
	}
	logger.Info("snapshot: table done", "rows", rows, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// copyRow adds one row's record for t, or dead-letters a row t refuses.
func (s *snapshotter) copyRow(ctx context.Context, t *mapping.Table, cells []replicator.Cell) error {
	rec, err := t.Upsert(cells, 0)
	if row, ok := errors.AsType[*mapping.RowError](err); ok {
		return s.p.Reject(t, row.Rejection)
	}
	if err != nil {
		return err
	}
	return s.p.Add(ctx, t, rec)
}

// mappedByAny says whether any mapping of a fan-out maps source column i:
// the one read of the table must carry every column some mapping writes.
func mappedByAny(ts []*mapping.Table) func(i int) bool {
	return func(i int) bool {
		for _, t := range ts {
			if t.Mapped(i) {
				return true
			}
		}
		return false
	}
}

// rejectNullKeys dead-letters the rows the key-ordered chunks cannot
// reach: a NULL in a key column addresses no target row, and such a row
// must not vanish silently. The other mappings of a fan-out, whose keys
// may differ, copy those rows as usual.
func (s *snapshotter) rejectNullKeys(ctx context.Context, tx pgx.Tx, ts []*mapping.Table, info *replication.TableInfo) (int64, error) {
	t := ts[0]
	var n int64
	after := ""
	for {
		chunk, last, err := replication.ReadNullKeys(ctx, tx, info, t.KeyColumns(), after, s.chunkRows, mappedByAny(ts))
		if err != nil {
			return n, err
		}
		for _, cells := range chunk {
			_, err := t.Upsert(cells, 0)
			row, ok := errors.AsType[*mapping.RowError](err)
			if !ok {
				return n, fmt.Errorf("snapshot %s: a row read for its NULL key was not rejected: %v", t.Rule.Source, err)
			}
			if err := s.p.Reject(t, row.Rejection); err != nil {
				return n, err
			}
			n++
			for _, other := range ts[1:] {
				if err := s.copyRow(ctx, other, cells); err != nil {
					return n, err
				}
			}
		}
		if len(chunk) < s.chunkRows {
			return n, nil
		}
		after = last
	}
}

// interrupted lets confirmed chunks land in the progress file within the
// drain bound, so that a stop during the snapshot loses little work.
func (s *snapshotter) interrupted(settled func() bool, save func(bool) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.drain)
	defer cancel()
	waitErr := s.p.WaitFor(ctx, settled)
	if err := save(false); err != nil {
		return err
	}
	if waitErr != nil && !errors.Is(waitErr, context.DeadlineExceeded) {
		return waitErr
	}
	return context.Canceled
}

func logProgress(logger *slog.Logger, rows, startRows, estimate int64, start time.Time) {
	elapsed := time.Since(start).Seconds()
	rate := float64(rows-startRows) / elapsed
	attrs := []any{"rows", rows, "rows_per_s", int64(rate)}
	if estimate > 0 {
		attrs = append(attrs, "estimated_rows", estimate, "percent", fmt.Sprintf("%.1f", 100*float64(rows)/float64(estimate)))
		if left := estimate - rows; left > 0 && rate > 0 {
			attrs = append(attrs, "time_left", time.Duration(float64(left)/rate*float64(time.Second)).Round(time.Second))
		}
	}
	logger.Info("snapshot: progress", attrs...)
}

// drawBar redraws a one-line progress bar in place (a terminal only).
func drawBar(w io.Writer, name string, rows, estimate int64) {
	const width = 30
	if estimate < rows {
		estimate = rows
	}
	filled := width
	if estimate > 0 {
		filled = int(int64(width) * rows / estimate)
	}
	fmt.Fprintf(w, "\r%s [%s%s] %d/%d rows", name, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), rows, estimate)
}

func keyStrings(key [][]byte) []string {
	out := make([]string, len(key))
	for i, k := range key {
		out[i] = string(k)
	}
	return out
}

// resyncPoint is a snapshot taken before a resync's copy: the copy's own
// snapshot is later, so it holds every change this one sees, and the stream
// skips those changes of the table (see StreamSink.SkipSeen).
type resyncPoint struct{ snapshot, before string }

// run copies every table whose snapshot is not done, in one repeatable-read
// transaction (the slot's exported snapshot when it was just created), and
// returns once every copied row is confirmed.
func (s *snapshotter) run(ctx context.Context, conn *pgx.Conn, exported string, tables []sourceTable, mapper *mapping.Mapper) error {
	var todo [][]sourceTable
	var point *resyncPoint
	for _, group := range bySource(tables) {
		t := group[0]
		prog := s.store.Table(t.rule.Source)
		if prog.Done {
			s.monitor.SnapshotProgress(t.rule.Source, prog.Rows, prog.Rows, true)
			continue
		}
		if prog.Online {
			continue
		}
		if exported == "" && prog.Resync && prog.ResyncSnapshot == "" {
			if point == nil {
				snap, before, err := replication.CurrentSnapshot(ctx, conn)
				if err != nil {
					return err
				}
				point = &resyncPoint{snap.String(), before.String()}
			}
			prog.ResyncSnapshot, prog.ResyncBefore = point.snapshot, point.before
			if err := s.store.SaveTable(t.rule.Source, prog); err != nil {
				return err
			}
		}
		var copies []sourceTable
		for _, m := range group {
			if m.rule.Snapshot {
				copies = append(copies, m)
			}
		}
		if len(copies) == 0 {
			prog.Done = true
			if err := s.store.SaveTable(t.rule.Source, prog); err != nil {
				return err
			}
			continue
		}
		todo = append(todo, copies)
	}
	if len(todo) == 0 {
		return nil
	}
	tx, err := replication.BeginSnapshot(ctx, conn, exported)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	for _, group := range todo {
		compiled := make([]*mapping.Table, len(group))
		for i, t := range group {
			if compiled[i], err = mapping.Compile(t.rule, &t.info.Relation, mapper.Types(), s.logger); err != nil {
				return err
			}
		}
		if err := s.copyTable(ctx, tx, compiled, group[0].info); err != nil {
			return err
		}
	}
	return nil
}

// bySource groups the mappings by source table, in order of appearance:
// a table fanned out to several targets is copied once, into all of them,
// under one progress record.
func bySource(tables []sourceTable) [][]sourceTable {
	var groups [][]sourceTable
	at := map[string]int{}
	for _, t := range tables {
		i, ok := at[t.rule.Source]
		if !ok {
			i = len(groups)
			at[t.rule.Source] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], t)
	}
	return groups
}
