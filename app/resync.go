package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/mapping"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/pipeline"
	"github.com/replicator-cdc/replicator/replication"
	"github.com/replicator-cdc/replicator/state"
	"github.com/replicator-cdc/replicator/targets/backoff"
)

// resyncer copies tables again beside the stream (an online resync): each
// key-ordered chunk is read on a connection of its own between a low and a
// high watermark in the WAL, and the stream writes it when it meets the
// high one (pipeline.Resyncs decides which rows the stream's own changes
// make stale). A fanned-out table is read once for all its mappings. It
// runs for one attempt: after each chunk the stream acknowledged it saves
// the chunk's last key, and a restart (or a failed copy) goes on after the
// last one saved, never after a chunk the target has not confirmed.
type resyncer struct {
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	dsn       string
	chunkRows int
	store     *state.Store
	monitor   *monitor.Monitor
	types     mapping.Types
	tables    map[string][]sourceTable // by source: every mapping of it
	logger    *slog.Logger
	resyncs   *pipeline.Resyncs
	afterRead func(source string, chunk int)
	// run tells this attempt's watermarks from those of an earlier one
	// that the stream may replay.
	run string
	// marks numbers the watermark pairs, across tables and attempts.
	marks atomic.Int64

	mu      sync.Mutex
	running map[string]bool
}

func newResyncer(ctx context.Context, cfg *config.Config, store *state.Store, mon *monitor.Monitor, tables []sourceTable, types mapping.Types, deps Deps) *resyncer {
	ctx, cancel := context.WithCancel(ctx)
	rs := &resyncer{
		ctx: ctx, cancel: cancel, dsn: cfg.Source.DSN, chunkRows: max(cfg.Pipeline.SnapshotChunkRows, 1),
		store: store, monitor: mon, types: types, tables: map[string][]sourceTable{}, logger: deps.Logger, afterRead: deps.AfterResyncRead,
		run: strconv.FormatInt(time.Now().UnixNano(), 36), running: map[string]bool{},
	}
	for _, t := range tables {
		rs.tables[t.rule.Source] = append(rs.tables[t.rule.Source], t)
	}
	rs.resyncs = &pipeline.Resyncs{OnRequest: rs.start, OnDone: rs.done}
	return rs
}

// resume starts the resyncs an earlier run left unfinished, each after
// its last acknowledged chunk, and those of mappings added since
// (markNewMappings). It runs before the stream does.
func (rs *resyncer) resume() {
	for name, p := range rs.store.Tables() {
		if p.Online && !p.Done {
			rs.begin(name, p)
		}
	}
}

// stop ends the copies and waits for them.
func (rs *resyncer) stop() {
	rs.cancel()
	rs.wg.Wait()
}

// start begins an online resync of source from its first key unless one
// runs: a request met in the stream.
func (rs *resyncer) start(source string) {
	rs.begin(source, state.TableProgress{Online: true})
}

// begin starts copying source from progress p unless a copy runs. It runs
// on the stream's goroutine (a request met in the stream, or resume before
// the stream starts) and does not block.
func (rs *resyncer) begin(source string, p state.TableProgress) {
	ts, ok := rs.tables[source]
	if !ok {
		rs.logger.Warn("online resync requested for a table that is not mapped; ignored", "table", source)
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.running[source] {
		return
	}
	if err := rs.store.SaveTable(source, p); err != nil {
		rs.monitor.Error(source, err)
		rs.logger.Error("online resync not started", "table", source, "error", err)
		return
	}
	rs.resyncs.Track(source)
	rs.running[source] = true
	rs.wg.Add(1)
	go func() {
		defer rs.wg.Done()
		rs.keepCopying(ts)
	}()
}

// keepCopying retries a failed copy, after its last acknowledged chunk,
// until it is done or the attempt ends.
func (rs *resyncer) keepCopying(ts []sourceTable) {
	t := ts[0]
	logger := rs.logger.With("table", t.rule.Source)
	for failures := 0; ; failures++ {
		logger.Info("online resync: copying the table beside the stream", "mappings", len(ts), "estimated_rows", t.info.EstimatedRows)
		err := rs.copy(ts)
		if err == nil || rs.ctx.Err() != nil {
			return
		}
		rs.monitor.Error(t.rule.Source, fmt.Errorf("online resync: %w", err))
		wait := backoff.Delay(time.Second, 30*time.Second, failures+1)
		logger.Warn("online resync failed; trying again after its last acknowledged chunk", "error", err, "wait", wait)
		if backoff.Sleep(rs.ctx, wait) != nil {
			return
		}
	}
}

// copy reads the table chunk by chunk, in its first mapping's key order,
// after the last chunk saved, and hands each chunk to the stream. The next
// chunk is read only once the stream has acknowledged everything up to this
// one's high watermark: the copy takes the target's quota only where the
// stream leaves it room, and the other tables' changes never queue behind
// more than one chunk. Only then is the chunk's last key saved: rows up to
// it are written, and any later change of them is in the stream after the
// acknowledged position, which a restart reads again.
func (rs *resyncer) copy(ts []sourceTable) error {
	ctx := rs.ctx
	conn, err := replication.ConnectSQL(ctx, rs.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	compiled := make([]*mapping.Table, len(ts))
	for i, t := range ts {
		if compiled[i], err = mapping.Compile(t.rule, &t.info.Relation, rs.types, rs.logger); err != nil {
			return err
		}
	}
	if err := awaitOlderWriters(ctx, conn, rs.logger); err != nil {
		return err
	}
	info, source := ts[0].info, ts[0].rule.Source
	keyColumns := compiled[0].KeyColumns()
	var rows int64
	var chunks int
	prog := rs.store.Table(source)
	after := prog.ResumeAfter(keyColumns)
	if after != nil {
		rows, chunks = prog.Rows, prog.Chunks
		rs.logger.Info("online resync: resuming after the last acknowledged chunk", "table", source, "rows", rows, "chunks", chunks)
		rs.monitor.ResyncProgress(source, rows, max(info.EstimatedRows, rows), chunks, false)
	}
	start, lastLog, startRows := time.Now(), time.Now(), rows
	for seq := chunks + 1; ; seq++ {
		id := fmt.Sprintf("%s %s-%d", source, rs.run, rs.marks.Add(1))
		if err := emitResyncMessage(ctx, conn, pipeline.ResyncPrefix, "low "+id); err != nil {
			return err
		}
		chunk, visible, err := readResyncChunk(ctx, conn, info, compiled, after, rs.chunkRows)
		if err != nil {
			return err
		}
		c := &pipeline.ResyncChunk{Tables: compiled, Rows: chunk, Visible: visible, Last: len(chunk) < rs.chunkRows, Emitted: make(chan struct{})}
		rs.resyncs.Offer(id, c)
		if rs.afterRead != nil {
			rs.afterRead(source, seq)
		}
		if err := emitResyncMessage(ctx, conn, pipeline.ResyncPrefix, "high "+id); err != nil {
			return err
		}
		select {
		case <-c.Emitted:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := rs.awaitAcknowledged(c.At); err != nil {
			return err
		}
		rows += int64(len(chunk))
		rs.acknowledged(source, rows, max(info.EstimatedRows, rows), seq, c.Last)
		if c.Last {
			// done saves the end once the stream settled it.
			return nil
		}
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			rs.logger.Info("online resync: progress", "table", source, "rows", rows, "chunk", seq,
				"rows_per_s", int64(float64(rows-startRows)/time.Since(start).Seconds()), "stream_acknowledged", c.At)
		}
		after = compiled[0].KeyText(chunk[len(chunk)-1])
		saved := state.TableProgress{Online: true, LastKey: keyStrings(after), KeyColumns: keyColumns, Rows: rows, Chunks: seq}
		if err := rs.store.SaveTable(source, saved); err != nil {
			return err
		}
	}
}

// acknowledged shows a chunk the stream acknowledged. The last one shows
// the end, like done: the stream runs done when it settles the last chunk,
// which may be before this goroutine sees the acknowledgement, and a
// chunk's progress shown after done would leave the status saying that a
// finished resync still runs.
func (rs *resyncer) acknowledged(source string, rows, total int64, seq int, last bool) {
	if last {
		rs.monitor.ResyncProgress(source, rows, rows, 0, true)
		return
	}
	rs.monitor.ResyncProgress(source, rows, total, seq, false)
}

// awaitAcknowledged waits until the stream acknowledged at: the chunk and
// every change before it are written.
func (rs *resyncer) awaitAcknowledged(at replicator.LSN) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for rs.resyncs.Acknowledged() < at {
		select {
		case <-rs.ctx.Done():
			return rs.ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// awaitOlderWriters waits until every transaction that took its id before
// the resync began has ended. The stream follows the table's changes from
// the start of the resync on (Resyncs.Track); a transaction that committed
// before that start is then visible to every chunk's read. Without the
// wait, one whose commit record was already in the WAL, and so streamed
// untracked, could still be invisible to the first chunk's snapshot (a
// commit shows in snapshots only after its record is written), and that
// chunk would write back the row as it was before.
func awaitOlderWriters(ctx context.Context, conn *pgx.Conn, logger *slog.Logger) error {
	// An id taken now, in a transaction of its own that ends at once:
	// every transaction that committed before the resync began has a
	// smaller one. (A snapshot's xip cannot tell: it leaves out running
	// transactions at or past its xmax.)
	var text string
	if err := conn.QueryRow(ctx, "SELECT pg_current_xact_id()::text").Scan(&text); err != nil {
		return fmt.Errorf("online resync: take a transaction id: %w", err)
	}
	mark, err := strconv.ParseUint(text, 10, 64)
	if err != nil {
		return fmt.Errorf("online resync: transaction id %q: %w", text, err)
	}
	start := time.Now()
	logged := false
	for {
		now, _, err := replication.CurrentSnapshot(ctx, conn)
		if err != nil {
			return err
		}
		if now.Xmin > mark {
			return nil
		}
		if !logged && time.Since(start) > 10*time.Second {
			logged = true
			logger.Warn("online resync: waiting for transactions that were writing when it began to end", "oldest", now.Xmin)
		}
		if err := backoff.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// done records a resync whose last chunk is acknowledged.
func (rs *resyncer) done(source string) error {
	rs.mu.Lock()
	delete(rs.running, source)
	rs.mu.Unlock()
	var rows int64
	for _, t := range rs.monitor.Snapshot().Tables {
		if t.Source == source {
			rows = t.SnapshotRows
		}
	}
	rs.monitor.ResyncProgress(source, rows, rows, 0, true)
	rs.logger.Info("online resync: table done", "table", source, "rows", rows)
	return rs.store.SaveTable(source, state.TableProgress{Done: true, Rows: rows})
}

// emitResyncMessage writes a non-transactional logical message: it is
// decoded at its own WAL position, between the commits before and after it,
// which is what a watermark must mark (a transactional one would need a
// transaction of its own and arrive at that transaction's commit).
func emitResyncMessage(ctx context.Context, conn *pgx.Conn, prefix, content string) error {
	if _, err := conn.Exec(ctx, "SELECT pg_logical_emit_message(false, $1, $2)", prefix, content); err != nil {
		return fmt.Errorf("online resync: write a watermark into the WAL: %w", err)
	}
	return nil
}

// readResyncChunk reads a chunk in a repeatable-read transaction together
// with the snapshot it read in, which tells the stream which changes the
// chunk holds.
func readResyncChunk(ctx context.Context, conn *pgx.Conn, info *replication.TableInfo, ts []*mapping.Table, after [][]byte, limit int) (rows [][]replicator.Cell, visible func(uint32) bool, err error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, fmt.Errorf("online resync: begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	var text string
	if err := tx.QueryRow(ctx, "SELECT pg_current_snapshot()::text").Scan(&text); err != nil {
		return nil, nil, fmt.Errorf("online resync: read the snapshot: %w", err)
	}
	snap, err := replication.ParseTxSnapshot(text)
	if err != nil {
		return nil, nil, err
	}
	rows, err = replication.ReadChunk(ctx, tx, info, ts[0].KeyColumns(), after, limit, mappedByAny(ts))
	if err != nil {
		return nil, nil, err
	}
	return rows, snap.Visible, tx.Commit(ctx)
}

// markNewMappings lets a mapping added to the configuration be copied
// online: the slot already streams the other tables, so none of them waits
// for its copy.
func markNewMappings(store *state.Store, tables []sourceTable, exported string) error {
	known := store.Tables()
	if exported != "" || len(known) == 0 {
		return nil
	}
	for _, t := range tables {
		if _, ok := known[t.rule.Source]; ok || !t.rule.Snapshot {
			continue
		}
		if err := store.SaveTable(t.rule.Source, state.TableProgress{Online: true}); err != nil {
			return err
		}
	}
	return nil
}

// requestOnline asks a running daemon, through the source's WAL, to resync
// tables beside its stream. It reports false when no daemon holds the slot.
func requestOnline(ctx context.Context, cfg *config.Config, tables []string) ([]string, bool, error) {
	conn, err := replication.ConnectSQL(ctx, cfg.Source.DSN)
	if err != nil {
		return nil, false, err
	}
	defer conn.Close(context.Background())
	var active bool
	err = conn.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", cfg.Source.Slot).Scan(&active)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !active) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read slot %s: %w", cfg.Source.Slot, err)
	}
	var done []string
	for _, t := range tables {
		if err := emitResyncMessage(ctx, conn, pipeline.ResyncRequestPrefix, t); err != nil {
			return done, true, err
		}
		done = append(done, fmt.Sprintf("table %s is being copied again by the running daemon, beside the stream; 'replicator status' shows its progress", t))
	}
	return done, true, nil
}
