package feishufake

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/internal/pgtest"
)

// TestParseTextMatchesPostgres holds the fake's input functions against
// PostgreSQL's own, for the types whose rules are exact: the fake accepts
// a text exactly when PostgreSQL does, so it is never friendlier than the
// real API.
func TestParseTextMatchesPostgres(t *testing.T) {
	samples := map[string][]string{
		"bigint": {"12", " 12 ", "\t12\n", "+5", "-5", "0012", "1e5", "1.0", "", " ", "abc", "12abc", "- 5", "++5", "+", "\u00a05", "5\u00a0",
			"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "true", "NaN", "0x1F", "1_000"},
		"integer":  {"2147483647", "2147483648", "-2147483648", "-2147483649", "\v3\f"},
		"smallint": {"32767", "32768", "-32768", "-32769"},
		"numeric": {"1.5", " 1.5 ", "+1.5", "-.5", "5.", ".", "1e5", "1E-5", "1e", "e5", "NaN", "nan", " NaN ", "+NaN", "Infinity", "-Infinity",
			"+Infinity", "inf", "-inf", "INF", "Infinityx", "1,5", "1.2.3", "abc", "", "\u00a01", "0x1F", "1_000"},
		"double precision": {"1.5", " 1.5 ", "1e5", "-1e-5", ".5", "NaN", "-Infinity", "inf", "+inf", "abc", "", "1.5x", "1e", "1,5", ".",
			"12 34", "1e400", "1e-400", "1e-310", "0e5", "0x0p3", "\u00a01", "1_000", "0x1p3", "Infinity", "infinity", "+NaN", "-nan", "+-nan"},
		"real":    {"1.5", "abc", "3.4e38", "1e39", "1e-50"},
		"boolean": {"true", "TRUE", " yes ", "y", "ye", "on", "of", "off", "o", "1", "0", "2", "t", "f", "no", "tr", "truex", "", "\u00a0t"},
		"uuid": {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
			"a0eebc999c0b4ef8bb6d6bb9bd380a11", "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11", " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
			"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 ", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
			"a0eebc9-99c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-", "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11", "", "{}"},
	}
	c := pgtest.Start(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.NewDatabase(t))
	require.NoError(t, err)
	defer conn.Close(ctx)
	for dataType, texts := range samples {
		for _, s := range texts {
			_, pgErr := conn.Exec(ctx, "SELECT ($1::text)::"+dataType, s)
			_, fakeErr := parseText(kindOf(dataType), s)
			require.Equal(t, pgErr == nil, fakeErr == nil, "%s %q: PostgreSQL says %v, the fake %v", dataType, s, pgErr, fakeErr)
		}
	}
}
