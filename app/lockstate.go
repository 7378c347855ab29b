package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/state"
)

// stateTable is the table of state.store: postgres.
func stateTable(cfg *config.Config) pgx.Identifier {
	schema, table, _ := strings.Cut(cfg.State.Table, ".")
	return pgx.Identifier{schema, table}
}

// stateDocs is where the active instance keeps its state and tokens: the
// state directory, or the table of the source database, written through
// the lock connection.
func stateDocs(ctx context.Context, cfg *config.Config, l *lease, instance string) (state.Docs, error) {
	if cfg.State.Store != config.StorePostgres {
		return fencedDocs{Docs: state.Dir(cfg.State.Dir), l: l}, nil
	}
	return tableDocs(ctx, cfg, l.use, instance)
}

// tableDocs is the state table of state.store: postgres, read and written
// through use, created first when missing.
func tableDocs(ctx context.Context, cfg *config.Config, use func(context.Context, func(context.Context, *pgx.Conn) error) error, instance string) (*state.Table, error) {
	name := stateTable(cfg)
	if err := use(ctx, func(ctx context.Context, c *pgx.Conn) error { return state.EnsureTable(ctx, c, name) }); err != nil {
		return nil, err
	}
	return &state.Table{Name: name, Slot: cfg.Source.Slot, Instance: instance, Use: use}, nil
}

// SharedDocs opens the state store for commands that do not hold the lock
// ('check', 'status'): they read, and 'check' may save a refreshed token
// (a refresh spends the saved one, so its successor must be kept where
// the daemon finds it).
func SharedDocs(ctx context.Context, cfg *config.Config) (docs state.Docs, closeDocs func(), err error) {
	if cfg.State.Store != config.StorePostgres {
		return state.Dir(cfg.State.Dir), func() {}, nil
	}
	conn, err := connectLock(ctx, cfg.Source.DSN, InstanceID(), false)
	if err != nil {
		return nil, nil, err
	}
	var mu sync.Mutex
	use := func(ctx context.Context, f func(context.Context, *pgx.Conn) error) error {
		mu.Lock()
		defer mu.Unlock()
		return f(ctx, conn)
	}
	table, err := tableDocs(ctx, cfg, use, InstanceID())
	if err != nil {
		conn.Close(context.Background())
		return nil, nil, err
	}
	return table, func() { conn.Close(context.Background()) }, nil
}

// exclusively runs f holding the slot's lock, for the commands that change
// the state: it refuses while a daemon is the active instance, and a
// standby cannot take over while f runs.
func exclusively(ctx context.Context, cfg *config.Config, f func(ctx context.Context, store *state.Store) error) error {
	instance := InstanceID()
	key := LockKey(cfg.Source.Slot)
	conn, err := connectLock(ctx, cfg.Source.DSN, instance, true)
	if err != nil {
		return err
	}
	var got bool
	asked := time.Now()
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil {
		conn.Close(context.Background())
		return fmt.Errorf("take the lock of slot %s: %w", cfg.Source.Slot, err)
	}
	if !got {
		holder, err := lockHolder(ctx, conn, key)
		conn.Close(context.Background())
		who := "another instance"
		if err == nil && holder != nil {
			who = holder.String()
		}
		return fmt.Errorf("%s is the active daemon of slot %s: stop it and its standbys first", who, cfg.Source.Slot)
	}
	l := newLease(conn, instance, slog.New(slog.DiscardHandler), asked)
	return l.hold(ctx, func(ctx context.Context, l *lease) error {
		if err := slotIdle(ctx, cfg); err != nil {
			return err
		}
		docs, err := stateDocs(ctx, cfg, l, instance)
		if err != nil {
			return err
		}
		store, err := state.OpenIn(cfg.State.Dir, docs)
		if err != nil {
			return err
		}
		return f(ctx, store)
	})
}
