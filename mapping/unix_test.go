package mapping

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/replication"
)

// TestUnixMatchesPostgres: unix_ms and unix_s give PostgreSQL's own epoch
// (rounded down) for values of every year it allows, BC and past 9999
// included, where Go's time parsing could not go.
func TestUnixMatchesPostgres(t *testing.T) {
	conn := sourceConn(t)
	types := &replication.TypeCatalog{Conn: conn}
	// PostgreSQL's extract(epoch) divides with 16 significant digits, so
	// past year 200000 its own answer is rounded: those are computed by hand.
	exprs := []struct{ expr, wantMS, wantS string }{
		{expr: `'2024-01-02 03:04:05.123999+00'::timestamptz`},
		{expr: `'1969-12-31 23:59:59.9995+00'::timestamptz`},
		{expr: `'1970-01-01 00:00:00+00'::timestamptz`},
		{expr: `'0044-03-15 12:00:00.5+00 BC'::timestamptz`},
		{expr: `'4713-11-24 00:00:00+00 BC'::timestamptz`},
		{expr: `'0001-01-01 00:00:00+00'::timestamptz`},
		{expr: `'0001-12-31 23:59:59.999999+00 BC'::timestamptz`},
		{expr: `'10000-01-01 00:00:00+00'::timestamptz`},
		{expr: `'294276-12-31 23:59:59.999999+00'::timestamptz`, wantMS: "9224318015999999", wantS: "9224318015999"},
		{expr: `'2024-02-29 12:00:00'::timestamp`},
		{expr: `'0100-03-01 00:00:00 BC'::timestamp`},
		{expr: `'12345-06-07 08:09:10.11'::timestamp`},
		{expr: `'2000-02-29'::date`},
		{expr: `'1900-03-01'::date`},
		{expr: `'0001-01-01 BC'::date`},
		{expr: `'4714-11-24 BC'::date`},
		{expr: `'5874897-12-31'::date`},
		{expr: `'2024-01-02 03:04:05+00'::stamp`},
	}
	for _, tt := range exprs {
		t.Run(tt.expr, func(t *testing.T) {
			text, oid, _ := pgValue(t, conn, tt.expr)
			wantMS, wantS := tt.wantMS, tt.wantS
			if wantMS == "" {
				// Dates count from midnight UTC, as the encoder does.
				query := `SELECT floor(extract(epoch FROM x) * 1000)::text, floor(extract(epoch FROM x))::text FROM (SELECT (%s)::timestamptz AS x) s`
				if strings.HasSuffix(tt.expr, "::date") {
					query = `SELECT ((x - date '1970-01-01')::int8 * 86400000)::text, ((x - date '1970-01-01')::int8 * 86400)::text FROM (SELECT %s AS x) s`
				}
				require.NoError(t, conn.QueryRow(context.Background(), fmt.Sprintf(query, tt.expr)).Scan(&wantMS, &wantS))
			}
			v, err := encodeWith(t, types, oid, FormatUnixMS, text)
			require.NoError(t, err, text)
			require.Equal(t, replicator.KindInt, v.Kind)
			require.Equal(t, wantMS, string(v.Raw), text)
			v, err = encodeWith(t, types, oid, FormatUnixS, text)
			require.NoError(t, err, text)
			require.Equal(t, wantS, string(v.Raw), text)
		})
	}
}

// TestUnixOfInfinityIsAnError: an infinite value has no Unix time; the
// encoder says so (the mapping turns it into a rejection of that value).
func TestUnixOfInfinityIsAnError(t *testing.T) {
	for _, c := range []class{classTimestampTZ, classTimestamp, classDate} {
		for _, in := range []string{"infinity", "-infinity"} {
			e := encoder{t: &valueType{class: c}, format: FormatUnixMS}
			_, err := e.encode(nil, []byte(in))
			require.ErrorIs(t, err, errInfinityUnix)
			require.ErrorContains(t, err, "infinity has no Unix time")
		}
	}
	for _, in := range []string{"", "2024", "2024-01-02 03:04", "2024-13-01 00:00:00+00", "2024-01-02 03:04:05+00 AD", "2024-01-02 03:04:05.+00"} {
		e := encoder{t: &valueType{class: classTimestampTZ}, format: FormatUnixS}
		_, err := e.encode(nil, []byte(in))
		require.Error(t, err, in)
		require.False(t, errors.Is(err, errInfinityUnix))
	}
}

func TestMoney(t *testing.T) {
	ok := map[string]string{
		"$0.00": "0.00", "$1,234.56": "1234.56", "-$1,234.56": "-1234.56", "($1.00)": "-1.00",
		"$92,233,720,368,547,758.07": "92233720368547758.07", "-$92,233,720,368,547,758.08": "-92233720368547758.08", "$5": "5",
	}
	for in, want := range ok {
		out, err := appendMoney(nil, []byte(in))
		require.NoError(t, err, in)
		require.Equal(t, want, string(out), in)
	}
	for _, in := range []string{"", "$", "1.234,56 €", "$1,23.00", "$1,2345.00", "€1.00", "-($1.00)", "$1.", "$.5", "$01.00", "($1.00", "$1,000,00"} {
		_, err := appendMoney(nil, []byte(in))
		require.Error(t, err, in)
	}
}
