package feishufake

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCoerce(t *testing.T) {
	num := func(s string) json.Number { return json.Number(s) }
	cases := []struct {
		dataType string
		in       any
		want     any
		bad      bool
	}{
		{"bigint", num("9007199254740993"), num("9007199254740993"), false},
		{"bigint", "42", num("42"), false},
		{"bigint", " -7 ", num("-7"), false},
		{"bigint", num("1.5"), nil, true},
		{"bigint", num("1e3"), nil, true},
		{"bigint", "abc", nil, true},
		{"bigint", num("9223372036854775808"), nil, true},
		{"bigint", true, nil, true},
		{"integer", num("2147483648"), nil, true},
		{"smallint", num("-32768"), num("-32768"), false},
		{"numeric", num("123456789012345678901234567890.123"), num("123456789012345678901234567890.123"), false},
		{"numeric", "1.50", num("1.50"), false},
		{"numeric", num("1.5e3"), num("1500"), false},
		{"numeric", num("12e-3"), num("0.012"), false},
		{"numeric", "NaN", "NaN", false},
		{"numeric", "1,5", nil, true},
		{"numeric(10,2)", num("3"), num("3"), false},
		{"double precision", num("1.5"), num("1.5"), false},
		{"double precision", "Infinity", "Infinity", false},
		{"double precision", "x", nil, true},
		{"boolean", true, true, false},
		{"boolean", "f", false, false},
		{"boolean", num("1"), true, false},
		{"boolean", "maybe", nil, true},
		{"text", "héllo", "héllo", false},
		{"text", num("12.50"), "12.50", false},
		{"text", false, "false", false},
		{"text", map[string]any{"a": 1}, nil, true},
		{"text", "a\x00b", nil, true},
		{"varchar(20)", "x", "x", false},
		{"uuid", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", false},
		{"uuid", "nope", nil, true},
		{"timestamptz", "2024-01-02T03:04:05.1234567+02:00", "2024-01-02T01:04:05.123457+00:00", false},
		{"timestamptz", "2024-01-02 03:04:05Z", "2024-01-02T03:04:05+00:00", false},
		{"timestamptz", "2024-01-02T03:04:05", "2024-01-02T03:04:05+00:00", false},
		{"timestamptz", "2024-01-02", "2024-01-02T00:00:00+00:00", false},
		{"timestamptz", "2024-02-30T00:00:00Z", nil, true},
		{"timestamptz", num("1700000000000"), nil, true},
		{"timestamptz", "yesterday-ish", nil, true},
		{"timestamp", "2024-01-02T03:04:05.5+05:00", "2024-01-02T03:04:05.5", false},
		{"date", "2024-01-02", "2024-01-02", false},
		{"date", "2024-13-02", nil, true},
		{"time", "03:04:05.25", "03:04:05.25", false},
		{"jsonb", map[string]any{"a": num("1")}, map[string]any{"a": num("1")}, false},
		{"jsonb", "text", "text", false},
		{"bytea", `\x00ff`, `\x00ff`, false},
		{"bytea", "ab", `\x6162`, false},
		{"bytea", `\xzz`, nil, true},
		{"inet", "10.0.0.1", "10.0.0.1", false},
		{"bigint", nil, nil, false},
	}
	for _, c := range cases {
		got, err := coerce(kindOf(c.dataType), c.in)
		if c.bad {
			assert.Error(t, err, "%s %#v", c.dataType, c.in)
			continue
		}
		if assert.NoError(t, err, "%s %#v", c.dataType, c.in) {
			assert.Equal(t, c.want, got, "%s %#v", c.dataType, c.in)
		}
	}
}

func TestCanonicalEquality(t *testing.T) {
	a, err := parseText(kindNumeric, "1.50")
	require.NoError(t, err)
	b, err := parseText(kindNumeric, "1.5")
	require.NoError(t, err)
	assert.Equal(t, canonical(kindNumeric, a), canonical(kindNumeric, b))
	x, err := parseText(kindTimestampTZ, "2024-01-02T05:00:00+02:00")
	require.NoError(t, err)
	y, err := parseText(kindTimestampTZ, "2024-01-02 03:00:00Z")
	require.NoError(t, err)
	assert.Equal(t, canonical(kindTimestampTZ, x), canonical(kindTimestampTZ, y))
}
