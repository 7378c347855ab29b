package replication

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// TypeInfo is what pg_type says about a type: enough to tell how its
// values look in text (a domain's base type, an array's element type and
// delimiter).
type TypeInfo struct {
	OID  uint32
	Name string
	// Type is typtype: 'b' base, 'c' composite, 'd' domain, 'e' enum,
	// 'p' pseudo, 'r' range, 'm' multirange.
	Type byte
	// Category is typcategory ('A' array, 'N' numeric, 'S' string, …).
	Category byte
	// Delim separates this type's values as elements of an array.
	Delim byte
	// BaseOID is a domain's underlying type (typbasetype).
	BaseOID uint32
	// ElemOID is an array's element type (typelem).
	ElemOID uint32
}

// lookupTimeout bounds one catalog read: it runs on the stream's
// goroutine, which must not hang on a dead connection.
const lookupTimeout = 30 * time.Second

// TypeCatalog reads types from pg_type, once per OID. It is not safe for
// concurrent use: the daemon uses it first while it compiles the snapshot's
// tables and then from the stream's goroutine, never from both at once.
type TypeCatalog struct {
	Conn  *pgx.Conn
	cache map[uint32]TypeInfo
}

// LookupType returns the catalog's entry for oid.
func (c *TypeCatalog) LookupType(oid uint32) (TypeInfo, error) {
	if t, ok := c.cache[oid]; ok {
		return t, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	t := TypeInfo{OID: oid}
	var typtype, category, delim string
	err := c.Conn.QueryRow(ctx, `
		SELECT format_type(oid, NULL), typtype::text, typcategory::text, typdelim::text, typbasetype, typelem
		FROM pg_type WHERE oid = $1`, oid).Scan(&t.Name, &typtype, &category, &delim, &t.BaseOID, &t.ElemOID)
	if errors.Is(err, pgx.ErrNoRows) {
		return TypeInfo{}, fmt.Errorf("type %d is not in pg_type (dropped while the daemon ran?)", oid)
	}
	if err != nil {
		return TypeInfo{}, fmt.Errorf("read type %d from pg_type: %w", oid, err)
	}
	t.Type, t.Category, t.Delim = typtype[0], category[0], delim[0]
	if c.cache == nil {
		c.cache = map[uint32]TypeInfo{}
	}
	c.cache[oid] = t
	return t, nil
}
