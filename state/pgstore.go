package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Table keeps documents in a table of the source database, one row per
// slot and document, so that every instance of the daemon finds what the
// active one saved: the checkpoint, the snapshot progress and the rotated
// Feishu tokens (a refresh token is single-use, so an instance with a copy
// of its own would spend one that is already spent).
type Table struct {
	// Name is the schema-qualified table.
	Name pgx.Identifier
	// Slot keys the rows, so that daemons of several slots share a table.
	Slot string
	// Instance is recorded as the writer of each row (updated_by).
	Instance string
	// Use runs f on the connection the store reads and writes through, one
	// call at a time. The daemon passes the connection that holds its
	// advisory lock: a save then commits only while the lock is held, and
	// an instance that lost the lock cannot write over its successor.
	Use func(ctx context.Context, f func(ctx context.Context, conn *pgx.Conn) error) error
}

// tableTimeout bounds one read or write of the table.
const tableTimeout = 15 * time.Second

// Load reads a document; found is false when there is none.
func (t *Table) Load(name string) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), tableTimeout)
	defer cancel()
	var data string
	err := t.Use(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SELECT data::text FROM "+t.Name.Sanitize()+" WHERE slot = $1 AND name = $2", t.Slot, name).Scan(&data)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state: read %s: %w", t.Where(name), err)
	}
	return []byte(data), true, nil
}

// Save replaces a document. It returns once the transaction committed,
// which is durable with synchronous_commit on (the daemon sets it for its
// own session).
func (t *Table) Save(name string, data []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), tableTimeout)
	defer cancel()
	err := t.Use(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "INSERT INTO "+t.Name.Sanitize()+` (slot, name, data, updated_at, updated_by)
			VALUES ($1, $2, $3::text::jsonb, now(), $4)
			ON CONFLICT (slot, name) DO UPDATE SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
			t.Slot, name, string(data), t.Instance)
		return err
	})
	if err != nil {
		return fmt.Errorf("state: write %s: %w", t.Where(name), err)
	}
	return nil
}

// Where names the document's row.
func (t *Table) Where(name string) string {
	return fmt.Sprintf("table %s (slot %s, %s)", t.Name.Sanitize(), t.Slot, name)
}

// EnsureTable creates the state table, and its schema, when missing.
func EnsureTable(ctx context.Context, conn *pgx.Conn, name pgx.Identifier) error {
	// CREATE ... IF NOT EXISTS checks the privilege to create before it
	// looks: ask first, so that a table a person created is enough.
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name.Sanitize()).Scan(&exists); err != nil {
		return fmt.Errorf("state: look for table %s: %w", name.Sanitize(), err)
	}
	if exists {
		return nil
	}
	ddl := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  slot text NOT NULL,
  name text NOT NULL,
  data jsonb NOT NULL,
  updated_at timestamptz NOT NULL,
  updated_by text NOT NULL,
  PRIMARY KEY (slot, name))`, name.Sanitize())
	if len(name) == 2 {
		var schema bool
		if err := conn.QueryRow(ctx, "SELECT to_regnamespace($1) IS NOT NULL", pgx.Identifier{name[0]}.Sanitize()).Scan(&schema); err != nil {
			return fmt.Errorf("state: look for schema %s: %w", name[0], err)
		}
		if !schema {
			ddl = "CREATE SCHEMA IF NOT EXISTS " + pgx.Identifier{name[0]}.Sanitize() + ";\n" + ddl
		}
	}
	if _, err := conn.Exec(ctx, ddl); err != nil {
		return fmt.Errorf("state: create table %s: %w; create it as a user who may, then grant the daemon's role SELECT, INSERT and UPDATE on it:\n%s", name.Sanitize(), err, ddl)
	}
	return nil
}
