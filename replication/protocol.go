package replication

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/internal/pgdsn"
)

// sessionParams fix the text forms of values, so that the decoder sees one
// format whatever the server's defaults: the snapshot connection uses the same.
var sessionParams = map[string]string{
	"TimeZone":           "UTC",
	"DateStyle":          "ISO, YMD",
	"IntervalStyle":      "postgres",
	"extra_float_digits": "1",
	"bytea_output":       "hex",
	"lc_monetary":        "C",
	"application_name":   "replicator",
}

// SessionParams returns the runtime parameters every source connection must
// use so that values arrive in the text forms the mapping expects.
func SessionParams() map[string]string {
	out := make(map[string]string, len(sessionParams))
	for k, v := range sessionParams {
		out[k] = v
	}
	return out
}

// ConnectReplication opens a logical replication connection to dsn's database.
func ConnectReplication(ctx context.Context, dsn string) (*pgconn.PgConn, error) {
	connCfg, err := pgdsn.Parse(dsn)
	if err != nil {
		return nil, fmt.Errorf("replication: source.dsn %w", err)
	}
	cfg := &connCfg.Config
	for k, v := range sessionParams {
		cfg.RuntimeParams[k] = v
	}
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("replication: connect: %w", err)
	}
	return conn, nil
}

// SystemInfo is the answer to IDENTIFY_SYSTEM.
type SystemInfo struct {
	SystemID string
	Timeline int32
	XLogPos  replicator.LSN
	DBName   string
}

// IdentifySystem asks the server for its identity and current WAL position.
func IdentifySystem(ctx context.Context, conn *pgconn.PgConn) (SystemInfo, error) {
	row, err := singleRow(ctx, conn, "IDENTIFY_SYSTEM", 4)
	if err != nil {
		return SystemInfo{}, fmt.Errorf("replication: IDENTIFY_SYSTEM: %w", err)
	}
	var info SystemInfo
	info.SystemID = row[0]
	var tl int
	if _, err := fmt.Sscan(row[1], &tl); err != nil {
		return SystemInfo{}, fmt.Errorf("replication: IDENTIFY_SYSTEM timeline %q: %w", row[1], err)
	}
	info.Timeline = int32(tl)
	if info.XLogPos, err = replicator.ParseLSN(row[2]); err != nil {
		return SystemInfo{}, fmt.Errorf("replication: IDENTIFY_SYSTEM: %w", err)
	}
	info.DBName = row[3]
	return info, nil
}

// CreatedSlot is the answer to CREATE_REPLICATION_SLOT.
type CreatedSlot struct {
	ConsistentPoint replicator.LSN
	// SnapshotName is valid for SET TRANSACTION SNAPSHOT while conn stays
	// open and runs no other command.
	SnapshotName string
}

// CreateSlot creates a pgoutput slot and exports its snapshot. A temporary
// slot (dry runs) disappears with the connection.
func CreateSlot(ctx context.Context, conn *pgconn.PgConn, slot string, temporary bool) (CreatedSlot, error) {
	kind := ""
	if temporary {
		kind = " TEMPORARY"
	}
	sql := fmt.Sprintf("CREATE_REPLICATION_SLOT %s%s LOGICAL pgoutput EXPORT_SNAPSHOT", quoteIdent(slot), kind)
	row, err := singleRow(ctx, conn, sql, 4)
	if err != nil {
		return CreatedSlot{}, fmt.Errorf("replication: create slot %s: %w", slot, err)
	}
	lsn, err := replicator.ParseLSN(row[1])
	if err != nil {
		return CreatedSlot{}, fmt.Errorf("replication: create slot %s: %w", slot, err)
	}
	return CreatedSlot{ConsistentPoint: lsn, SnapshotName: row[2]}, nil
}

func singleRow(ctx context.Context, conn *pgconn.PgConn, sql string, minCols int) ([]string, error) {
	results, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) < minCols {
		return nil, errors.New("unexpected answer shape")
	}
	row := make([]string, len(results[0].Rows[0]))
	for i, v := range results[0].Rows[0] {
		row[i] = string(v)
	}
	return row, nil
}

// sendStandbyStatus reports positions to the server. flush is always set
// explicitly: it is what the server may discard WAL up to.
func sendStandbyStatus(w *Wire, write, flush replicator.LSN, replyRequested bool) error {
	buf := make([]byte, 34)
	buf[0] = 'r'
	binary.BigEndian.PutUint64(buf[1:], uint64(write))
	binary.BigEndian.PutUint64(buf[9:], uint64(flush))
	binary.BigEndian.PutUint64(buf[17:], uint64(flush))
	binary.BigEndian.PutUint64(buf[25:], uint64(pgTime(time.Now())))
	if replyRequested {
		buf[33] = 1
	}
	if err := w.sendCopyData(buf); err != nil {
		return fmt.Errorf("replication: send standby status: %w", err)
	}
	return nil
}

var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func pgTime(t time.Time) int64 { return t.Sub(pgEpoch).Microseconds() }

// PGTime converts a protocol timestamp (microseconds since 2000-01-01).
func PGTime(us int64) time.Time { return pgEpoch.Add(time.Duration(us) * time.Microsecond) }

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func quoteLiteral(s string) string {
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}
