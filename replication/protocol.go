package replication

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

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

// readBuffer is the replication connection's read buffer.
const readBuffer = 64 << 10

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
	configureDial(cfg)
	// When the stream is behind, each read should take hundreds of its
	// small messages: pgconn's own buffer holds 8 KiB.
	cfg.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		return pgproto3.NewFrontend(bufio.NewReaderSize(r, readBuffer), w)
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("replication: connect: %w", err)
	}
	return conn, nil
}

// IdentifySystem asks the server for its identity and current WAL position.
func IdentifySystem(ctx context.Context, conn *pgconn.PgConn) (pglogrepl.IdentifySystemResult, error) {
	sys, err := pglogrepl.IdentifySystem(ctx, conn)
	if err != nil {
		return pglogrepl.IdentifySystemResult{}, fmt.Errorf("replication: IDENTIFY_SYSTEM: %w", err)
	}
	return sys, nil
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
	res, err := pglogrepl.CreateReplicationSlot(ctx, conn, quoteIdent(slot), "pgoutput", pglogrepl.CreateReplicationSlotOptions{
		Temporary: temporary, SnapshotAction: "EXPORT_SNAPSHOT", Mode: pglogrepl.LogicalReplication,
	})
	if err != nil {
		return CreatedSlot{}, fmt.Errorf("replication: create slot %s: %w", slot, err)
	}
	lsn, err := replicator.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return CreatedSlot{}, fmt.Errorf("replication: create slot %s: %w", slot, err)
	}
	return CreatedSlot{ConsistentPoint: lsn, SnapshotName: res.SnapshotName}, nil
}

var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// PGTime converts a protocol timestamp (microseconds since 2000-01-01).
func PGTime(us int64) time.Time { return pgEpoch.Add(time.Duration(us) * time.Microsecond) }

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func quoteLiteral(s string) string {
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}
