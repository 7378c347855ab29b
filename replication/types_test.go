package replication

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/internal/pgtest"
)

// TestTypeCatalog reads what the mapping needs from pg_type, and reads
// each type once.
func TestTypeCatalog(t *testing.T) {
	c := pgtest.Start(t)
	ctx := context.Background()
	conn, err := ConnectSQL(ctx, c.NewDatabase(t))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, `
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TYPE pair AS (n integer, s text);`)
	require.NoError(t, err)
	oid := func(name string) uint32 {
		var o uint32
		require.NoError(t, conn.QueryRow(ctx, "SELECT $1::regtype::oid", name).Scan(&o))
		return o
	}
	cat := &TypeCatalog{Conn: conn}
	posint := oid("posint")
	tests := []struct {
		name string
		want replicator.TypeInfo
	}{
		{"posint", replicator.TypeInfo{Name: "posint", Type: 'd', Category: 'N', Delim: ',', BaseOID: 23}},
		{"posint[]", replicator.TypeInfo{Name: "posint[]", Type: 'b', Category: 'A', Delim: ',', ElemOID: oid("posint")}},
		{"mood", replicator.TypeInfo{Name: "mood", Type: 'e', Category: 'E', Delim: ','}},
		{"pair", replicator.TypeInfo{Name: "pair", Type: 'c', Category: 'C', Delim: ','}},
		{"box", replicator.TypeInfo{Name: "box", Type: 'b', Category: 'G', Delim: ';', ElemOID: 600}},
		{"int4range", replicator.TypeInfo{Name: "int4range", Type: 'r', Category: 'R', Delim: ','}},
	}
	for _, tt := range tests {
		tt.want.OID = oid(tt.name)
		got, err := cat.LookupType(tt.want.OID)
		require.NoError(t, err)
		require.Equal(t, tt.want, got, tt.name)
	}
	// Cached: no query runs on a closed connection.
	require.NoError(t, conn.Close(ctx))
	got, err := cat.LookupType(posint)
	require.NoError(t, err)
	require.Equal(t, "posint", got.Name)
	_, err = cat.LookupType(16)
	require.Error(t, err, "an uncached type needs the connection")
}
