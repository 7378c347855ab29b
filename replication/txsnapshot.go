package replication

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/replicator-cdc/replicator"
)

// TxSnapshot is a transaction snapshot as pg_current_snapshot() prints it
// ("xmin:xmax:xip,..."), with full (epoch-extended) transaction ids.
type TxSnapshot struct {
	Xmin, Xmax uint64
	Xip        []uint64
}

// ParseTxSnapshot reads pg_current_snapshot()'s text form.
func ParseTxSnapshot(s string) (TxSnapshot, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return TxSnapshot{}, fmt.Errorf("transaction snapshot %q: want xmin:xmax:xip", s)
	}
	var snap TxSnapshot
	var err error
	if snap.Xmin, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return TxSnapshot{}, fmt.Errorf("transaction snapshot %q: xmin: %w", s, err)
	}
	if snap.Xmax, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return TxSnapshot{}, fmt.Errorf("transaction snapshot %q: xmax: %w", s, err)
	}
	if snap.Xmin > snap.Xmax {
		return TxSnapshot{}, fmt.Errorf("transaction snapshot %q: xmin after xmax", s)
	}
	if parts[2] != "" {
		for _, x := range strings.Split(parts[2], ",") {
			id, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return TxSnapshot{}, fmt.Errorf("transaction snapshot %q: xip: %w", s, err)
			}
			snap.Xip = append(snap.Xip, id)
		}
	}
	return snap, nil
}

func (s TxSnapshot) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d:%d:", s.Xmin, s.Xmax)
	for i, x := range s.Xip {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(x, 10))
	}
	return b.String()
}

// Visible reports whether the snapshot sees the (committed) transaction
// whose 32-bit id pgoutput's Begin message carries. The id is taken as the
// nearest full id before xmax; one at or after xmax is not visible.
func (s TxSnapshot) Visible(xid uint32) bool {
	back := uint32(s.Xmax) - xid
	if back == 0 || back > 1<<31 {
		return false
	}
	if uint64(back) > s.Xmax {
		return true
	}
	full := s.Xmax - uint64(back)
	if full < s.Xmin {
		return true
	}
	for _, x := range s.Xip {
		if x == full {
			return false
		}
	}
	return true
}

// CurrentSnapshot takes a snapshot of the committed transactions and the
// WAL insert position read after it: every transaction the snapshot sees
// committed before that position.
func CurrentSnapshot(ctx context.Context, conn *pgx.Conn) (TxSnapshot, replicator.LSN, error) {
	var text, lsnText string
	if err := conn.QueryRow(ctx, "SELECT pg_current_snapshot()::text, pg_current_wal_insert_lsn()::text").Scan(&text, &lsnText); err != nil {
		return TxSnapshot{}, 0, fmt.Errorf("read the current transaction snapshot: %w", err)
	}
	snap, err := ParseTxSnapshot(text)
	if err != nil {
		return TxSnapshot{}, 0, err
	}
	lsn, err := replicator.ParseLSN(lsnText)
	return snap, lsn, err
}
