package mapping

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/replicator-cdc/replicator"
)

// Formats a column may ask for instead of its type's default encoding.
const (
	FormatDefault = ""
	FormatUnixMS  = "unix_ms"
	FormatUnixS   = "unix_s"
	FormatString  = "string"
	FormatJSON    = "json"
)

var (
	rawTrue  = []byte("true")
	rawFalse = []byte("false")
)

// encoder turns a column's PostgreSQL text form into a normalized value.
// It keeps the text wherever the text already is the normalized form, so a
// row is transcoded without building Go values.
type encoder struct {
	oid    uint32
	format string
	types  *pgtype.Map
}

func (e *encoder) encode(text []byte) (replicator.Value, error) {
	switch e.format {
	case FormatString:
		return replicator.Value{Kind: replicator.KindText, Raw: text}, nil
	case FormatUnixMS, FormatUnixS:
		return e.unix(text)
	case FormatJSON:
		v, err := e.natural(text)
		if err != nil {
			return v, err
		}
		return replicator.Value{Kind: replicator.KindText, Raw: replicator.AppendJSON(nil, v)}, nil
	}
	return e.natural(text)
}

func (e *encoder) natural(text []byte) (replicator.Value, error) {
	switch e.oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID, pgtype.XIDOID, pgtype.CIDOID:
		return replicator.Value{Kind: replicator.KindInt, Raw: text}, nil
	case pgtype.NumericOID:
		return replicator.Value{Kind: replicator.KindNumeric, Raw: text}, nil
	case pgtype.Float4OID, pgtype.Float8OID:
		return replicator.Value{Kind: replicator.KindFloat, Raw: text}, nil
	case pgtype.BoolOID:
		if len(text) == 1 && text[0] == 't' {
			return replicator.Value{Kind: replicator.KindBool, Raw: rawTrue}, nil
		}
		return replicator.Value{Kind: replicator.KindBool, Raw: rawFalse}, nil
	case pgtype.JSONOID, pgtype.JSONBOID:
		return replicator.Value{Kind: replicator.KindJSON, Raw: text}, nil
	case pgtype.ByteaOID:
		return replicator.Value{Kind: replicator.KindBytes, Raw: text}, nil
	case pgtype.TimestamptzOID:
		if out, ok := isoTimestamp(text, true); ok {
			return replicator.Value{Kind: replicator.KindTimestampTZ, Raw: out}, nil
		}
		return replicator.Value{Kind: replicator.KindText, Raw: text}, nil
	case pgtype.TimestampOID:
		if out, ok := isoTimestamp(text, false); ok {
			return replicator.Value{Kind: replicator.KindTimestamp, Raw: out}, nil
		}
		return replicator.Value{Kind: replicator.KindText, Raw: text}, nil
	case pgtype.DateOID:
		if len(text) == 10 && text[4] == '-' && text[7] == '-' {
			return replicator.Value{Kind: replicator.KindDate, Raw: text}, nil
		}
		return replicator.Value{Kind: replicator.KindText, Raw: text}, nil
	case pgtype.TimeOID, pgtype.TimetzOID:
		return replicator.Value{Kind: replicator.KindTime, Raw: text}, nil
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID, pgtype.UUIDOID:
		return replicator.Value{Kind: replicator.KindText, Raw: text}, nil
	}
	if t, ok := e.types.TypeForOID(e.oid); ok {
		if _, isArray := t.Codec.(*pgtype.ArrayCodec); isArray {
			return e.array(t, text)
		}
	}
	return replicator.Value{Kind: replicator.KindText, Raw: text}, nil
}

// array converts an array literal into a JSON array through pgx's codecs;
// arrays are rare enough that building Go values here costs nothing.
func (e *encoder) array(t *pgtype.Type, text []byte) (replicator.Value, error) {
	v, err := t.Codec.DecodeValue(e.types, e.oid, pgtype.TextFormatCode, text)
	if err != nil {
		return replicator.Value{}, fmt.Errorf("decode %s array %q: %w", t.Name, text, err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return replicator.Value{}, fmt.Errorf("encode %s array as JSON: %w", t.Name, err)
	}
	return replicator.Value{Kind: replicator.KindJSON, Raw: out}, nil
}

// isoTimestamp turns PostgreSQL's ISO output ("2024-01-02 03:04:05.123456+00")
// into RFC 3339 ("2024-01-02T03:04:05.123456+00:00"). Forms RFC 3339 cannot
// carry (BC dates, years past 9999, infinity, second-level offsets) report false.
func isoTimestamp(text []byte, zoned bool) ([]byte, bool) {
	if len(text) < 19 || text[4] != '-' || text[10] != ' ' || text[13] != ':' {
		return nil, false
	}
	end := len(text)
	var zone []byte
	if zoned {
		i := 19
		for i < len(text) && (text[i] == '.' || (text[i] >= '0' && text[i] <= '9')) {
			i++
		}
		zone, end = text[i:], i
		switch {
		case len(zone) == 3 && (zone[0] == '+' || zone[0] == '-'):
		case len(zone) == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':':
		default:
			return nil, false
		}
	} else {
		for i := 19; i < len(text); i++ {
			if c := text[i]; c != '.' && (c < '0' || c > '9') {
				return nil, false
			}
		}
	}
	out := make([]byte, 0, end+6)
	out = append(out, text[:10]...)
	out = append(out, 'T')
	out = append(out, text[11:end]...)
	if zoned {
		out = append(out, zone...)
		if len(zone) == 3 {
			out = append(out, ':', '0', '0')
		}
	}
	return out, true
}

func (e *encoder) unix(text []byte) (replicator.Value, error) {
	var t time.Time
	var err error
	switch e.oid {
	case pgtype.TimestamptzOID:
		out, ok := isoTimestamp(text, true)
		if !ok {
			return replicator.Value{}, fmt.Errorf("timestamp %q has no Unix time", text)
		}
		t, err = time.Parse(time.RFC3339Nano, string(out))
	case pgtype.TimestampOID:
		out, ok := isoTimestamp(text, false)
		if !ok {
			return replicator.Value{}, fmt.Errorf("timestamp %q has no Unix time", text)
		}
		t, err = time.Parse("2006-01-02T15:04:05.999999999", string(out))
	case pgtype.DateOID:
		t, err = time.Parse(time.DateOnly, string(text))
	default:
		return replicator.Value{}, fmt.Errorf("format %s needs a timestamp, timestamptz or date column", e.format)
	}
	if err != nil {
		return replicator.Value{}, fmt.Errorf("parse %q: %w", text, err)
	}
	n := t.UnixMilli()
	if e.format == FormatUnixS {
		n = t.Unix()
	}
	return replicator.Value{Kind: replicator.KindInt, Raw: strconv.AppendInt(nil, n, 10)}, nil
}

// checkFormat reports whether format can apply to a column of type oid.
func checkFormat(format string, oid uint32) error {
	switch format {
	case FormatDefault, FormatString, FormatJSON:
		return nil
	case FormatUnixMS, FormatUnixS:
		switch oid {
		case pgtype.TimestamptzOID, pgtype.TimestampOID, pgtype.DateOID:
			return nil
		}
		return fmt.Errorf("format %s needs a timestamp, timestamptz or date column", format)
	}
	return fmt.Errorf("unknown format %q (use unix_ms, unix_s, string or json)", format)
}
