package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/mapping"
)

// HeartbeatPrefix marks the logical messages the daemon emits to keep its
// slot moving; they carry no data.
const HeartbeatPrefix = "replicator_heartbeat"

// StreamSink feeds the replication stream into the pipeline. It implements
// replication.Sink and lives on the stream's goroutine.
type StreamSink struct {
	p       *Pipeline
	mapper  *mapping.Mapper
	tracker *Tracker
	ctx     context.Context
	logger  *slog.Logger

	inTxn      bool
	commitLSN  replicator.LSN
	xid        uint32
	lastCommit replicator.LSN
	seen       map[string]*seenBySnapshot
	resync     *Resyncs
}

// seenBySnapshot marks a table's changes that its copy already holds.
type seenBySnapshot struct {
	visible func(xid uint32) bool
	before  replicator.LSN
	skipped int64
}

// SkipSeen drops the changes of source table whose transactions the copy's
// snapshot saw (visible) and that commit before the position read after it: the table was copied
// from a later snapshot, so they are already in its rows. This is what lets
// a resync answer a TRUNCATE instead of meeting it again.
func (s *StreamSink) SkipSeen(source string, visible func(xid uint32) bool, before replicator.LSN) {
	if s.seen == nil {
		s.seen = map[string]*seenBySnapshot{}
	}
	s.seen[source] = &seenBySnapshot{visible: visible, before: before}
}

func (s *StreamSink) skip(t *mapping.Table) bool {
	seen := s.seen[t.Rule.Source]
	if seen == nil || s.commitLSN >= seen.before || !seen.visible(s.xid) {
		return false
	}
	if seen.skipped == 0 {
		s.logger.Info("skipping changes the table's last copy already holds", "table", t.Rule.Source, "until", seen.before)
	}
	seen.skipped++
	return true
}

// NewStreamSink acknowledges from start, the position the stream resumes at.
// ctx is the stop signal: it ends reads of the source the mapping makes (key
// changes) and every wait for the targets, except the Drain's.
func NewStreamSink(ctx context.Context, p *Pipeline, mapper *mapping.Mapper, start replicator.LSN, logger *slog.Logger) *StreamSink {
	return &StreamSink{p: p, mapper: mapper, tracker: NewTracker(start), ctx: ctx, logger: logger, lastCommit: start}
}

// Handle implements replication.Sink.
func (s *StreamSink) Handle(m *replicator.Message) error {
	switch m.Kind {
	case replicator.MessageBegin:
		s.inTxn, s.commitLSN, s.xid = true, m.LSN, m.Xid
		s.p.Begin(s.tracker, m.Time)
	case replicator.MessageCommit:
		s.inTxn = false
		s.lastCommit = m.EndLSN
		s.p.Commit(m.EndLSN)
	case replicator.MessageRelation:
		return s.mapper.Relation(s.ctx, m.Relation)
	case replicator.MessageInsert, replicator.MessageUpdate, replicator.MessageDelete:
		err := s.mapper.Change(s.ctx, m, s.commitLSN, func(t *mapping.Table, rec replicator.Record) error {
			if s.skip(t) {
				return nil
			}
			s.resync.noteChange(t, &rec, s.xid)
			return s.p.Add(s.ctx, t, rec)
		})
		if rows := mapping.RowErrors(err); len(rows) > 0 {
			for _, row := range rows {
				if err := s.p.Reject(row.Table, row.Rejection); err != nil {
					return err
				}
			}
			return nil
		}
		return err
	case replicator.MessageTruncate:
		return s.truncate(m)
	case replicator.MessageLogical:
		if strings.HasPrefix(m.Prefix, ResyncPrefix) {
			return s.resyncMessage(m)
		}
		if !s.inTxn {
			s.tracker.Mark(m.LSN)
		}
	}
	return nil
}

func (s *StreamSink) truncate(m *replicator.Message) error {
	for _, id := range m.RelationIDs {
		ts, err := s.mapper.Tables(id)
		if err != nil {
			return err
		}
		if err := s.truncateTables(ts); err != nil {
			return err
		}
	}
	return nil
}

func (s *StreamSink) truncateTables(ts []*mapping.Table) error {
	for _, t := range ts {
		if s.skip(t) {
			continue
		}
		if t.Rule.OnTruncate == mapping.TruncateEmpty {
			if err := s.p.Empty(s.ctx, t); err != nil {
				return err
			}
			continue
		}
		if t.Rule.OnTruncate == mapping.TruncateIgnore {
			s.logger.Warn("source table truncated; the mapping says on_truncate: ignore, so the target keeps its rows",
				"table", t.Rule.Source, "target", t.Rule.Target, "target_table", t.Rule.Table)
			continue
		}
		what := t.Rule.Source
		if name := t.Relation().QualifiedName(); name != what {
			what += " (partition " + name + ")"
		}
		return fmt.Errorf("source table %s was truncated at %s; the mapping says on_truncate: halt. To mirror it: empty target table %s, run 'replicator resync --config FILE --table %s' and start again (docs/production.md, \"Resyncing one table\"); or set on_truncate: empty or ignore",
			what, s.commitLSN, t.Rule.Table, t.Rule.Source)
	}
	return nil
}

// Mark implements replication.Sink.
func (s *StreamSink) Mark(lsn replicator.LSN) {
	if !s.inTxn {
		s.tracker.Mark(lsn)
	}
}

// Idle implements replication.Sink.
func (s *StreamSink) Idle() error {
	if err := s.resync.settle(s.tracker.Acknowledged()); err != nil {
		return err
	}
	return s.p.FlushAged(s.ctx)
}

// Lag is how long the oldest unconfirmed transaction has waited since its
// commit; 0 when nothing is pending.
func (s *StreamSink) Lag(now time.Time) time.Duration {
	at, ok := s.tracker.Oldest()
	if !ok || now.Before(at) {
		return 0
	}
	return now.Sub(at)
}

// Acknowledged implements replication.Sink.
func (s *StreamSink) Acknowledged() replicator.LSN { return s.tracker.Acknowledged() }

// Drain implements replication.Sink: everything up to the last commit seen
// is confirmed, or ctx ended. A transaction cut off mid-way stays
// unacknowledged and is resent on restart.
func (s *StreamSink) Drain(ctx context.Context) error {
	return s.p.WaitFor(ctx, func() bool { return s.tracker.Acknowledged() >= s.lastCommit })
}
