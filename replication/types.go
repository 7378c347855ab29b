package replication

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicator-cdc/replicator"
)

// lookupTimeout bounds one catalog read: it runs on the stream's
// goroutine, which must not hang on a dead connection.
const lookupTimeout = 30 * time.Second

// TypeCatalog reads types from pg_type, once per OID. It is not safe for
// concurrent use: the daemon uses it first while it compiles the snapshot's
// tables and then from the stream's goroutine, never from both at once.
type TypeCatalog struct {
	Conn  *pgx.Conn
	cache map[uint32]replicator.TypeInfo
}

// LookupType returns the catalog's entry for oid.
func (c *TypeCatalog) LookupType(oid uint32) (replicator.TypeInfo, error) {
	if t, ok := c.cache[oid]; ok {
		return t, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	t := replicator.TypeInfo{OID: oid}
	var typtype, category, delim string
	err := c.Conn.QueryRow(ctx, `
		SELECT format_type(oid, NULL), typtype::text, typcategory::text, typdelim::text, typbasetype, typelem
		FROM pg_type WHERE oid = $1`, oid).Scan(&t.Name, &typtype, &category, &delim, &t.BaseOID, &t.ElemOID)
	if errors.Is(err, pgx.ErrNoRows) {
		return replicator.TypeInfo{}, fmt.Errorf("type %d is not in pg_type (dropped while the daemon ran?)", oid)
	}
	if err != nil {
		return replicator.TypeInfo{}, fmt.Errorf("read type %d from pg_type: %w", oid, err)
	}
	t.Type, t.Category, t.Delim = typtype[0], category[0], delim[0]
	if c.cache == nil {
		c.cache = map[uint32]replicator.TypeInfo{}
	}
	c.cache[oid] = t
	return t, nil
}
