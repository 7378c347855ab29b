package app

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	Slot       SlotStatus    `json:"slot"`
	Checkpoint string        `json:"checkpoint"`
	Tables     []TableStatus `json:"tables"`
	// DeadLetters counts the lines of the dead-letter file and of the one
	// rotated file kept before it.
	DeadLetters int           `json:"dead_letters"`
	Tokens      []TokenStatus `json:"tokens,omitempty"`
	StateDir    string        `json:"state_dir"`
	// StateStore is where the checkpoint, progress and tokens are kept.
	StateStore string `json:"state_store"`
	// Active is the instance holding the slot's lock, the one that
	// writes; nil when none does.
	Active *LockHolder `json:"active_instance"`
	// Daemon is what the running daemon publishes at http.listen; nil
	// when that endpoint does not answer.
	Daemon *DaemonStatus `json:"daemon,omitempty"`
	// SourceError is why the source did not answer, when only the daemon
	// (waiting for it) did.
	SourceError string   `json:"source_error,omitempty"`
	Problems    []string `json:"problems,omitempty"`
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
	// LagSource says who measured LagSeconds: "daemon" (how long the
	// oldest unconfirmed change has waited) or "server" (pg_stat_replication).
	LagSource string `json:"lag_source,omitempty"`
	// daemonAt is where the daemon's status was looked for.
	daemonAt string
}

// LagText describes the lag in time for people, saying why it is unknown.
func (s SlotStatus) LagText() string {
	switch {
	case s.LagSeconds != nil && s.LagSource == "daemon":
		return fmt.Sprintf("%.1f s (oldest unconfirmed change, from the daemon)", *s.LagSeconds)
	case s.LagSeconds != nil:
		return fmt.Sprintf("%.1f s (flush lag measured by the server)", *s.LagSeconds)
	case !s.Active:
		return "unknown (daemon not streaming)"
	}
	// PostgreSQL clears its lag figures once the standby has confirmed
	// everything, and has none before a first change is confirmed.
	return fmt.Sprintf("unknown (the slot is in use, but the daemon's status at %s did not answer and the server has no measurement)", s.daemonAt)
}

// DaemonStatus is the part of the daemon's /status.json that status shows.
type DaemonStatus struct {
	Phase        string  `json:"phase"`
	Acknowledged string  `json:"acknowledged"`
	LagSeconds   float64 `json:"lag_seconds"`
	// While reconnecting: the failed attempts in a row and the last error.
	ReconnectAttempt int    `json:"reconnect_attempt,omitempty"`
	LastError        string `json:"last_error,omitempty"`
	// Tables holds the daemon's per-table figures (online resyncs).
	Tables []DaemonTable `json:"tables,omitempty"`
}

// DaemonTable is the part of the daemon's table figures status shows.
type DaemonTable struct {
	Source        string `json:"source"`
	Target        string `json:"target"`
	Table         string `json:"table"`
	SnapshotRows  int64  `json:"snapshot_rows"`
	SnapshotTotal int64  `json:"snapshot_total"`
	Resyncing     bool   `json:"resyncing,omitempty"`
	ResyncChunk   int    `json:"resync_chunk,omitempty"`
}

// TableStatus is one mapped table's snapshot progress.
type TableStatus struct {
	Source       string `json:"source"`
	Target       string `json:"target"`
	Table        string `json:"table"`
	SnapshotRows int64  `json:"snapshot_rows"`
	SnapshotDone bool   `json:"snapshot_done"`
	// Resync describes an online resync under way.
	Resync string `json:"resync,omitempty"`
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
	// The server's flush_lag is NULL whenever the daemon is caught up; the
	// daemon itself knows its lag (and its phase, say during a snapshot).
	r.Slot.daemonAt = daemonStatusURL(cfg.HTTP.Listen)
	r.Daemon, _ = readDaemon(ctx, r.Slot.daemonAt)
	conn, err := replication.ConnectSQL(ctx, cfg.Source.DSN)
	switch {
	case err != nil && r.Daemon == nil:
		return nil, err
	case err != nil:
		// The daemon waits for the server too: show what it says.
		r.SourceError = err.Error()
	default:
		defer conn.Close(context.Background())
		if err := readSlot(ctx, conn, &r.Slot); err != nil {
			return nil, err
		}
		if r.Active, err = lockHolder(ctx, conn, LockKey(cfg.Source.Slot)); err != nil {
			return nil, err
		}
		if d := r.Daemon; d != nil && d.Phase == "streaming" && r.Slot.Active {
			r.Slot.LagSeconds, r.Slot.LagSource = &d.LagSeconds, "daemon"
		}
	}
	docs, closeDocs, err := SharedDocs(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer closeDocs()
	r.StateStore = docs.Where(state.StateFile)
	store, err := state.OpenIn(cfg.State.Dir, docs)
	if err != nil {
		return nil, err
	}
	r.Checkpoint = store.Checkpoint().String()
	progress := store.Tables()
	for _, m := range cfg.Mappings {
		p := progress[m.Source]
		r.Tables = append(r.Tables, TableStatus{Source: m.Source, Target: m.Target, Table: m.Table, SnapshotRows: p.Rows, SnapshotDone: p.Done, Resync: resyncText(r.Daemon, m, p)})
	}
	for _, name := range []string{state.RotatedDeadLetterFile, state.DeadLetterFile} {
		n, err := countLines(filepath.Join(cfg.State.Dir, name))
		if err != nil {
			r.Problems = append(r.Problems, err.Error())
		}
		r.DeadLetters += n
	}
	names := make([]string, 0, len(cfg.Targets))
	for n := range cfg.Targets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := cfg.Targets[n]
		if t.Feishu == nil || !t.Feishu.UsesOAuth() {
			continue
		}
		access, refresh, found, err := feishu.SavedTokenExpiry(docs, n)
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
	if lagSeconds != nil {
		s.LagSeconds, s.LagSource = lagSeconds, "server"
	}
	return nil
}

// daemonStatusURL is where a daemon listening on listen serves its status;
// a wildcard address is reached on loopback.
func daemonStatusURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen + "/status.json"
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/status.json"
}

func readDaemon(ctx context.Context, url string) (*DaemonStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	var d DaemonStatus
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&d); err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return &d, nil
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
	var done []string
	err := exclusively(ctx, cfg, func(ctx context.Context, store *state.Store) error {
		var err error
		done, err = teardown(ctx, cfg, store)
		return err
	})
	return done, err
}

func teardown(ctx context.Context, cfg *config.Config, store *state.Store) ([]string, error) {
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
	if _, found, err := store.Docs().Load(state.StateFile); err != nil || found {
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

// resyncText describes the online resync of mapping m the daemon reports,
// or, with no daemon running, the one its saved progress p leaves to resume.
func resyncText(d *DaemonStatus, m *config.Mapping, p state.TableProgress) string {
	if d == nil {
		if p.Online && !p.Done {
			return fmt.Sprintf("online resync unfinished: %d rows copied in %d chunks; the next start goes on after them", p.Rows, p.Chunks)
		}
		return ""
	}
	for _, t := range d.Tables {
		if t.Source == m.Source && t.Target == m.Target && t.Table == m.Table && t.Resyncing {
			return fmt.Sprintf("online resync: %d of ~%d rows copied, chunk %d", t.SnapshotRows, t.SnapshotTotal, t.ResyncChunk)
		}
	}
	return ""
}
