package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/pipeline"
)

// slotCheckInterval is how often the slot's WAL retention is read.
const slotCheckInterval = 15 * time.Second

// retentionWarning is the share of max_slot_wal_keep_size left below which
// the daemon warns: the slot is about to be invalidated.
const retentionWarning = 0.2

// maintenance runs on the stream's goroutine (it shares a connection with
// the row fetcher, which runs there too).
type maintenance struct {
	conn      *pgx.Conn
	slot      string
	heartbeat time.Duration
	monitor   *monitor.Monitor
	logger    *slog.Logger

	lastBeat, lastCheck time.Time
	warned              bool
}

func (m *maintenance) run(lastMessage time.Time) error {
	now := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A database whose changes all go to other tables (or other databases
	// of the cluster) sends us nothing to acknowledge; a message of our own
	// gives the slot a position to move to.
	if m.heartbeat > 0 && now.Sub(lastMessage) >= m.heartbeat && now.Sub(m.lastBeat) >= m.heartbeat {
		m.lastBeat = now
		if _, err := m.conn.Exec(ctx, "SELECT pg_logical_emit_message(false, $1, '')", pipeline.HeartbeatPrefix); err != nil {
			if m.conn.IsClosed() {
				return fmt.Errorf("source: the SQL connection was lost sending a heartbeat: %w", err)
			}
			m.logger.Warn("heartbeat failed; the slot may hold WAL back while the mapped tables are idle", "error", err)
		} else {
			m.monitor.Heartbeat()
		}
	}
	if now.Sub(m.lastCheck) < slotCheckInterval {
		return nil
	}
	m.lastCheck = now
	return m.checkSlot(ctx)
}

// errSlotLost stops the daemon: the WAL it needed is gone.
var errSlotLost = errors.New("replication slot lost")

func (m *maintenance) checkSlot(ctx context.Context) error {
	var status *string
	var safe *int64
	var keep string
	err := m.conn.QueryRow(ctx, `SELECT wal_status, safe_wal_size, current_setting('max_slot_wal_keep_size')
		FROM pg_replication_slots WHERE slot_name = $1`, m.slot).Scan(&status, &safe, &keep)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: slot %s no longer exists; changes since the last acknowledged position are gone. Resync: empty the target tables, run 'replicator teardown --config FILE --yes', then start again (every table is copied anew)", errSlotLost, m.slot)
	}
	if err != nil && m.conn.IsClosed() {
		// Row fetches share the connection: reconnect before one needs it.
		return fmt.Errorf("source: the SQL connection was lost reading the slot's WAL retention: %w", err)
	}
	if err != nil {
		m.logger.Warn("could not read the slot's WAL retention", "slot", m.slot, "error", err)
		return nil
	}
	if status != nil && *status == "lost" {
		return fmt.Errorf("%w: slot %s was invalidated because it held more WAL than max_slot_wal_keep_size allows; changes are gone. Resync: empty the target tables, run 'replicator teardown --config FILE --yes', then start again (every table is copied anew), and consider raising max_slot_wal_keep_size", errSlotLost, m.slot)
	}
	if safe == nil {
		m.monitor.SlotRetention(-1, 1)
		return nil
	}
	budget, err := keepSizeBytes(keep)
	if err != nil || budget <= 0 {
		m.monitor.SlotRetention(*safe, 1)
		return nil
	}
	left := float64(*safe) / float64(budget)
	m.monitor.SlotRetention(*safe, left)
	if left < retentionWarning && !m.warned {
		m.warned = true
		m.logger.Warn("the slot is close to max_slot_wal_keep_size and will be invalidated if it falls further behind: check that the targets accept writes, or raise the limit",
			"slot", m.slot, "safe_wal_bytes", *safe, "max_slot_wal_keep_size", keep, "left", fmt.Sprintf("%.0f%%", 100*left))
	} else if left >= retentionWarning {
		m.warned = false
	}
	return nil
}

// keepSizeBytes parses max_slot_wal_keep_size as SHOW prints it ("-1",
// "1GB", "512MB", "1024kB").
func keepSizeBytes(s string) (int64, error) {
	var n int64
	var unit string
	if _, err := fmt.Sscanf(s, "%d%s", &n, &unit); err != nil {
		if _, err2 := fmt.Sscanf(s, "%d", &n); err2 != nil {
			return 0, fmt.Errorf("parse max_slot_wal_keep_size %q: %w", s, err)
		}
		unit = "MB"
	}
	mult := map[string]int64{"B": 1, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("parse max_slot_wal_keep_size %q: unknown unit", s)
	}
	return n * mult, nil
}
