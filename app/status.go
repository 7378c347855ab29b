package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/replication"
	"github.com/replicator-cdc/replicator/state"
	"github.com/replicator-cdc/replicator/targets/feishu"
)

// StatusReport is what 'replicator status' shows.
type StatusReport struct {
	Slot        SlotStatus    `json:"slot"`
	Checkpoint  string        `json:"checkpoint"`
	Tables      []TableStatus `json:"tables"`
	DeadLetters int           `json:"dead_letters"`
	Tokens      []TokenStatus `json:"tokens,omitempty"`
	StateDir    string        `json:"state_dir"`
	Problems    []string      `json:"problems,omitempty"`
}

// SlotStatus describes the replication slot.
type SlotStatus struct {
	Name       string   `json:"name"`
	Exists     bool     `json:"exists"`
	Active     bool     `json:"active"`
	Confirmed  string   `json:"confirmed_flush_lsn,omitempty"`
	WALStatus  string   `json:"wal_status,omitempty"`
	LagBytes   int64    `json:"lag_bytes"`
	LagSeconds *float64 `json:"lag_seconds"`
}

// TableStatus is one mapped table's snapshot progress.
type TableStatus struct {
	Source       string `json:"source"`
	Target       string `json:"target"`
	Table        string `json:"table"`
	SnapshotRows int64  `json:"snapshot_rows"`
	SnapshotDone bool   `json:"snapshot_done"`
}

// TokenStatus is a Feishu OAuth target's saved token expiry.
type TokenStatus struct {
	Target         string    `json:"target"`
	AccessExpires  time.Time `json:"access_token_expires_at"`
	RefreshExpires time.Time `json:"refresh_token_expires_at,omitzero"`
}

// Status reads the slot, the state directory and the saved tokens.
func Status(ctx context.Context, cfg *config.Config) (*StatusReport, error) {
	r := &StatusReport{Slot: SlotStatus{Name: cfg.Source.Slot}, StateDir: cfg.State.Dir}
	conn, err := replication.ConnectSQL(ctx, cfg.Source.DSN)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	if err := readSlot(ctx, conn, &r.Slot); err != nil {
		return nil, err
	}
	store, err := state.Open(cfg.State.Dir)
	if err != nil {
		return nil, err
	}
	r.Checkpoint = store.Checkpoint().String()
	progress := store.Tables()
	for _, m := range cfg.Mappings {
		p := progress[m.Source]
		r.Tables = append(r.Tables, TableStatus{Source: m.Source, Target: m.Target, Table: m.Table, SnapshotRows: p.Rows, SnapshotDone: p.Done})
	}
	if r.DeadLetters, err = countLines(filepath.Join(cfg.State.Dir, state.DeadLetterFile)); err != nil {
		r.Problems = append(r.Problems, err.Error())
	}
	names := make([]string, 0, len(cfg.Targets))
	for n := range cfg.Targets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := cfg.Targets[n]
		if t.Type != config.TypeFeishu || t.OAuth == nil {
			continue
		}
		access, refresh, found, err := feishu.SavedTokenExpiry(cfg.State.Dir, n)
		if err != nil {
			r.Problems = append(r.Problems, err.Error())
		} else if found {
			r.Tokens = append(r.Tokens, TokenStatus{Target: n, AccessExpires: access, RefreshExpires: refresh})
		}
	}
	return r, nil
}

func readSlot(ctx context.Context, conn *pgx.Conn, s *SlotStatus) error {
	var confirmed, walStatus *string
	var lagBytes *int64
	var lagSeconds *float64
	err := conn.QueryRow(ctx, `
		SELECT s.active, s.confirmed_flush_lsn::text, s.wal_status,
		       (pg_current_wal_lsn() - s.confirmed_flush_lsn)::int8,
		       EXTRACT(EPOCH FROM r.flush_lag)::float8
		FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
		WHERE s.slot_name = $1`, s.Name).Scan(&s.Active, &confirmed, &walStatus, &lagBytes, &lagSeconds)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read slot %s: %w", s.Name, err)
	}
	s.Exists = true
	s.Confirmed, s.WALStatus = deref(confirmed), deref(walStatus)
	if lagBytes != nil && *lagBytes > 0 {
		s.LagBytes = *lagBytes
	}
	s.LagSeconds = lagSeconds
	return nil
}

func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read dead letters: %w", err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		n++
	}
	return n, sc.Err()
}

// Teardown drops the slot and the publication and lets the state directory
// forget its progress: the next run creates them and copies every table.
func Teardown(ctx context.Context, cfg *config.Config) ([]string, error) {
	conn, err := replication.ConnectSQL(ctx, cfg.Source.DSN)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	var done []string
	var active bool
	err = conn.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", cfg.Source.Slot).Scan(&active)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		done = append(done, fmt.Sprintf("slot %s: did not exist", cfg.Source.Slot))
	case err != nil:
		return done, fmt.Errorf("read slot %s: %w", cfg.Source.Slot, err)
	case active:
		return done, fmt.Errorf("slot %s is in use by a running daemon: stop it first", cfg.Source.Slot)
	default:
		if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", cfg.Source.Slot); err != nil {
			return done, fmt.Errorf("drop slot %s: %w", cfg.Source.Slot, err)
		}
		done = append(done, fmt.Sprintf("slot %s: dropped", cfg.Source.Slot))
	}
	if _, err := conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{cfg.Source.Publication}.Sanitize()); err != nil {
		return done, fmt.Errorf("drop publication %s: %w", cfg.Source.Publication, err)
	}
	done = append(done, fmt.Sprintf("publication %s: dropped", cfg.Source.Publication))
	// The next start must not take the missing slot for a lost one.
	if _, err := os.Stat(filepath.Join(cfg.State.Dir, "state.json")); err == nil {
		store, err := state.Open(cfg.State.Dir)
		if err == nil {
			err = store.Unbind()
		}
		if err != nil {
			return done, err
		}
		done = append(done, "state: progress forgotten; the next start copies every table anew")
	}
	return done, nil
}
