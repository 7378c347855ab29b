package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/replication"
	"github.com/replicator-cdc/replicator/state"
)

// ErrSlotMismatch stops the daemon: the slot is not the one the state
// followed, so changes may be missing that no restart would bring back.
var ErrSlotMismatch = errors.New("the replication slot is not the one the state directory followed")

// slotChoice is what a person can do about a mismatched slot.
const slotChoice = `Changes between the two positions were never mirrored. With the daemon stopped, either:
  - resync every table: empty the target tables, run 'replicator resync --config FILE --all', then start again
    (every table is copied anew from the current data; docs/production.md, "A moved or re-created slot"); or
  - accept the gap: run 'replicator accept-slot --config FILE --yes' to follow the slot from where it is now.`

// sourceIdentity names the server and database the slot lives in.
func sourceIdentity(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn) (state.SlotIdentity, error) {
	sys, err := replication.IdentifySystem(ctx, repl)
	if err != nil {
		return state.SlotIdentity{}, err
	}
	id := state.SlotIdentity{SystemID: sys.SystemID, Database: sys.DBName}
	if err := conn.QueryRow(ctx, "SELECT oid FROM pg_database WHERE datname = current_database()").Scan(&id.DatabaseOID); err != nil {
		return state.SlotIdentity{}, fmt.Errorf("read the database's oid: %w", err)
	}
	return id, nil
}

// checkSlot refuses a slot of the followed name that is somewhere else, or
// whose confirmed position is ahead of the saved checkpoint: the daemon
// saves the checkpoint before it reports a position, so only someone else
// can have moved (or dropped and re-created) the slot.
func checkSlot(store *state.Store, slot string, id state.SlotIdentity, confirmed replicator.LSN) error {
	// A renamed database keeps its oid and its slots.
	if saved := store.Identity(); saved != nil && (saved.SystemID != id.SystemID || saved.DatabaseOID != id.DatabaseOID) {
		return fmt.Errorf("%w: slot %s is in database %s (oid %d) of server %s, but the state followed it in database %s (oid %d) of server %s.\n%s",
			ErrSlotMismatch, slot, id.Database, id.DatabaseOID, id.SystemID, saved.Database, saved.DatabaseOID, saved.SystemID, slotChoice)
	}
	if cp := store.Checkpoint(); cp != 0 && confirmed > cp {
		return fmt.Errorf("%w: slot %s has confirmed %s, ahead of the checkpoint %s the daemon saved: someone moved it, or dropped and created it again.\n%s",
			ErrSlotMismatch, slot, confirmed, cp, slotChoice)
	}
	return nil
}

// seenBy is a table's copy snapshot, whose changes the stream skips.
type seenBy struct {
	source string
	snap   replication.TxSnapshot
	before replicator.LSN
}

// seenByCopies lists the tables copied from a snapshot of their own whose
// changes the stream, starting at start, will meet again.
func seenByCopies(store *state.Store, start replicator.LSN) ([]seenBy, error) {
	var out []seenBy
	for name, p := range store.Tables() {
		if p.ResyncSnapshot == "" {
			continue
		}
		before, err := replicator.ParseLSN(p.ResyncBefore)
		if err != nil {
			return nil, fmt.Errorf("state: table %s: resync position: %w (run 'replicator resync --config FILE --table %s')", name, err, name)
		}
		if before <= start {
			continue
		}
		snap, err := replication.ParseTxSnapshot(p.ResyncSnapshot)
		if err != nil {
			return nil, fmt.Errorf("state: table %s: %w (run 'replicator resync --config FILE --table %s')", name, err, name)
		}
		out = append(out, seenBy{source: name, snap: snap, before: before})
	}
	return out, nil
}

// Resync marks tables (every mapped table with all) to be copied again at
// the next start; tables named while a daemon streams are copied by it at
// once, beside the stream (requestOnline). With all it also lets go of the slot's identity and
// position: the next start follows the slot from where it is then.
func Resync(ctx context.Context, cfg *config.Config, all bool, tables []string) ([]string, error) {
	if all == (len(tables) > 0) {
		return nil, errors.New("name the tables to copy again with --table, or pass --all")
	}
	mapped := map[string]bool{}
	for _, m := range cfg.Mappings {
		mapped[m.Source] = true
	}
	for i, t := range tables {
		schema, name := replication.SplitName(t)
		tables[i] = schema + "." + name
		if !mapped[tables[i]] {
			return nil, fmt.Errorf("table %s is not mapped (mapped: %s)", t, strings.Join(mappedSources(cfg), ", "))
		}
	}
	if !all {
		if done, online, err := requestOnline(ctx, cfg, tables); online || err != nil {
			return done, err
		}
	}
	var done []string
	err := exclusively(ctx, cfg, func(ctx context.Context, store *state.Store) error {
		if all {
			if err := store.Unbind(); err != nil {
				return err
			}
			done = append(done, "every table will be copied again at the next start, which follows the slot from where it is then")
			return nil
		}
		for _, t := range tables {
			if err := store.RequestResync(t); err != nil {
				return err
			}
			done = append(done, fmt.Sprintf("table %s will be copied again at the next start", t))
		}
		return nil
	})
	return done, err
}

// AcceptSlot makes the state follow the slot from its current position,
// keeping every table's progress: the changes in between are given up.
func AcceptSlot(ctx context.Context, cfg *config.Config) ([]string, error) {
	var done []string
	err := exclusively(ctx, cfg, func(ctx context.Context, store *state.Store) error {
		conn, err := replication.ConnectSQL(ctx, cfg.Source.DSN)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		repl, err := replication.ConnectReplication(ctx, cfg.Source.DSN)
		if err != nil {
			return err
		}
		defer repl.Close(context.Background())
		id, err := sourceIdentity(ctx, conn, repl)
		if err != nil {
			return err
		}
		confirmed, found, err := replication.SlotPosition(ctx, conn, cfg.Source.Slot)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("slot %s does not exist: there is nothing to accept; start the daemon to create it (every table is copied anew)", cfg.Source.Slot)
		}
		old := store.Checkpoint()
		if err := store.Rebind(cfg.Source.Slot, id, confirmed); err != nil {
			return err
		}
		done = append(done, fmt.Sprintf("the state now follows slot %s from %s (the checkpoint was %s); changes in between are not mirrored", cfg.Source.Slot, confirmed, old))
		return nil
	})
	return done, err
}

// slotIdle refuses to change the state under a running daemon.
func slotIdle(ctx context.Context, cfg *config.Config) error {
	conn, err := replication.ConnectSQL(ctx, cfg.Source.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var active bool
	err = conn.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", cfg.Source.Slot).Scan(&active)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("read slot %s: %w", cfg.Source.Slot, err)
	}
	if active {
		return fmt.Errorf("slot %s is in use by a running daemon: stop it first", cfg.Source.Slot)
	}
	return nil
}

func mappedSources(cfg *config.Config) []string {
	out := make([]string, len(cfg.Mappings))
	for i, m := range cfg.Mappings {
		out[i] = m.Source
	}
	return out
}

// slotStateItem says, before a start would, that the slot moved ahead of
// the checkpoint the state directory saved. It reads the state without
// creating it.
func slotStateItem(ctx context.Context, conn *pgx.Conn, cfg *config.Config) CheckItem {
	name := "slot follows the saved checkpoint"
	docs, closeDocs, err := SharedDocs(ctx, cfg)
	if err != nil {
		return CheckItem{Name: name, Status: CheckFail, Detail: err.Error()}
	}
	defer closeDocs()
	if _, found, err := docs.Load(state.StateFile); err == nil && !found {
		return CheckItem{Name: name, Status: CheckOK, Detail: "no saved state yet"}
	}
	store, err := state.OpenIn(cfg.State.Dir, docs)
	if err != nil {
		return CheckItem{Name: name, Status: CheckFail, Detail: err.Error()}
	}
	confirmed, found, err := replication.SlotPosition(ctx, conn, cfg.Source.Slot)
	if err != nil {
		return CheckItem{Name: name, Status: CheckFail, Detail: err.Error()}
	}
	if !found || store.Slot() != cfg.Source.Slot {
		return CheckItem{Name: name, Status: CheckOK, Detail: "the state follows no existing slot: run copies every table"}
	}
	if cp := store.Checkpoint(); cp != 0 && confirmed > cp {
		return CheckItem{Name: name, Status: CheckFail, Detail: fmt.Sprintf("slot %s has confirmed %s, ahead of the saved checkpoint %s: someone moved it, or dropped and created it again. %s",
			cfg.Source.Slot, confirmed, cp, slotChoice)}
	}
	return CheckItem{Name: name, Status: CheckOK, Detail: "checkpoint " + store.Checkpoint().String()}
}
