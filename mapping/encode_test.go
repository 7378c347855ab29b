package mapping

import (
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
)

func TestEncode(t *testing.T) {
	tests := []struct {
		name     string
		oid      uint32
		format   string
		in       string
		wantKind replicator.Kind
		wantJSON string
	}{
		{"bigint beyond 2^53 stays exact", pgtype.Int8OID, "", "9007199254740993", replicator.KindInt, "9007199254740993"},
		{"numeric keeps every digit", pgtype.NumericOID, "", "12345678901234567890.123456789012345678", replicator.KindNumeric, "12345678901234567890.123456789012345678"},
		{"numeric NaN is a string", pgtype.NumericOID, "", "NaN", replicator.KindNumeric, `"NaN"`},
		{"float infinity is a string", pgtype.Float8OID, "", "Infinity", replicator.KindFloat, `"Infinity"`},
		{"float", pgtype.Float8OID, "", "1.5e+300", replicator.KindFloat, "1.5e+300"},
		{"bool true", pgtype.BoolOID, "", "t", replicator.KindBool, "true"},
		{"bool false", pgtype.BoolOID, "", "f", replicator.KindBool, "false"},
		{"text escapes", pgtype.TextOID, "", "a\"b\\c\nd", replicator.KindText, `"a\"b\\c\nd"`},
		{"uuid is text", pgtype.UUIDOID, "", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", replicator.KindText, `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`},
		{"timestamptz keeps microseconds and offset", pgtype.TimestamptzOID, "", "2024-01-02 03:04:05.123456+00", replicator.KindTimestampTZ, `"2024-01-02T03:04:05.123456+00:00"`},
		{"timestamptz with minutes offset", pgtype.TimestamptzOID, "", "2024-01-02 03:04:05+05:30", replicator.KindTimestampTZ, `"2024-01-02T03:04:05+05:30"`},
		{"timestamptz infinity stays text", pgtype.TimestamptzOID, "", "infinity", replicator.KindText, `"infinity"`},
		{"timestamptz BC stays text", pgtype.TimestamptzOID, "", "0044-03-15 12:00:00+00 BC", replicator.KindText, `"0044-03-15 12:00:00+00 BC"`},
		{"timestamp", pgtype.TimestampOID, "", "2024-01-02 03:04:05.5", replicator.KindTimestamp, `"2024-01-02T03:04:05.5"`},
		{"date", pgtype.DateOID, "", "2024-01-02", replicator.KindDate, `"2024-01-02"`},
		{"jsonb is embedded", pgtype.JSONBOID, "", `{"a": [1, 2.50]}`, replicator.KindJSON, `{"a": [1, 2.50]}`},
		{"bytea hex", pgtype.ByteaOID, "", `\xdeadbeef`, replicator.KindBytes, `"\\xdeadbeef"`},
		{"int array", pgtype.Int4ArrayOID, "", "{1,2,NULL}", replicator.KindJSON, "[1,2,null]"},
		{"text array with quotes", pgtype.TextArrayOID, "", `{"a,b","c\"d",e}`, replicator.KindJSON, `["a,b","c\"d","e"]`},
		{"unix_ms rounds down", pgtype.TimestamptzOID, FormatUnixMS, "2024-01-02 03:04:05.123999+00", replicator.KindInt, "1704164645123"},
		{"unix_ms before 1970 rounds down", pgtype.TimestamptzOID, FormatUnixMS, "1969-12-31 23:59:59.9995+00", replicator.KindInt, "-1"},
		{"unix_s of an offset time", pgtype.TimestamptzOID, FormatUnixS, "2024-01-02 08:04:05+05", replicator.KindInt, "1704164645"},
		{"unix_ms of a date", pgtype.DateOID, FormatUnixMS, "1970-01-02", replicator.KindInt, "86400000"},
		{"string keeps the postgres text", pgtype.BoolOID, FormatString, "t", replicator.KindText, `"t"`},
		{"json embeds the value as text", pgtype.JSONBOID, FormatJSON, `{"a":1}`, replicator.KindText, `"{\"a\":1}"`},
		{"json of a number", pgtype.Int4OID, FormatJSON, "5", replicator.KindText, `"5"`},
		{"json of an array", pgtype.Int4ArrayOID, FormatJSON, "{{1,2},{3,NULL}}", replicator.KindText, `"[[1,2],[3,null]]"`},
		{"unix_ms of a BC timestamp", pgtype.TimestamptzOID, FormatUnixMS, "0001-12-31 23:59:59.999+00 BC", replicator.KindInt, "-62135596800001"},
		{"unix_s of year 10000", pgtype.TimestampOID, FormatUnixS, "10000-01-01 00:00:00", replicator.KindInt, "253402300800"},
		{"unix_ms of a BC date", pgtype.DateOID, FormatUnixMS, "0001-12-31 BC", replicator.KindInt, "-62135683200000"},
		{"money is a number", 790, "", "-$1,234.56", replicator.KindNumeric, "-1234.56"},
		{"money as string keeps its text", 790, FormatString, "$1.00", replicator.KindText, `"$1.00"`},
		{"date of year 10000 is its text", pgtype.DateOID, "", "10000-01-01", replicator.KindText, `"10000-01-01"`},
		{"box array uses ';'", 1020, "", "{(1,1),(0,0);(2,2),(1,1)}", replicator.KindJSON, `["(1,1),(0,0)","(2,2),(1,1)"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vt, err := resolveType(nil, tt.oid)
			require.NoError(t, err)
			e := encoder{t: vt, format: tt.format}
			v, err := e.encode(nil, []byte(tt.in))
			require.NoError(t, err)
			require.Equal(t, tt.wantKind, v.Kind)
			require.Equal(t, tt.wantJSON, string(replicator.AppendJSON(nil, v)))
		})
	}
}

// TestEncodeRejects: values the encoder cannot carry are errors with a
// reason (the mapping turns them into rejections of the value).
func TestEncodeRejects(t *testing.T) {
	tests := []struct {
		name   string
		oid    uint32
		format string
		in     string
		reason string
	}{
		{"boolean other than t/f", pgtype.BoolOID, "", "true", "neither t nor f"},
		{"money in another locale", 790, "", "1.234,56 €", "C locale"},
		{"unix_ms of infinity", pgtype.TimestamptzOID, FormatUnixMS, "infinity", "infinity has no Unix time"},
		{"unix_s of -infinity", pgtype.DateOID, FormatUnixS, "-infinity", "infinity has no Unix time"},
		{"broken array", pgtype.Int4ArrayOID, "", "{1,", "ends early"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vt, err := resolveType(nil, tt.oid)
			require.NoError(t, err)
			e := encoder{t: vt, format: tt.format}
			_, err = e.encode(nil, []byte(tt.in))
			require.ErrorContains(t, err, tt.reason)
		})
	}
}

func TestCheckFormat(t *testing.T) {
	require.NoError(t, checkFormat(FormatUnixMS, &valueType{class: classTimestampTZ}))
	require.Error(t, checkFormat(FormatUnixMS, &valueType{class: classText}))
	require.Error(t, checkFormat("iso", &valueType{class: classText}))
}
