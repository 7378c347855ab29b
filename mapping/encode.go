package mapping

import (
	"fmt"
	"strconv"

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
	t      *valueType
	format string
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
	switch e.t.class {
	case classInt:
		return replicator.Value{Kind: replicator.KindInt, Raw: text}, nil
	case classNumeric:
		return replicator.Value{Kind: replicator.KindNumeric, Raw: text}, nil
	case classFloat:
		return replicator.Value{Kind: replicator.KindFloat, Raw: text}, nil
	case classMoney:
		out, err := appendMoney(make([]byte, 0, len(text)), text)
		if err != nil {
			return replicator.Value{}, err
		}
		return replicator.Value{Kind: replicator.KindNumeric, Raw: out}, nil
	case classBool:
		switch {
		case len(text) == 1 && text[0] == 't':
			return replicator.Value{Kind: replicator.KindBool, Raw: rawTrue}, nil
		case len(text) == 1 && text[0] == 'f':
			return replicator.Value{Kind: replicator.KindBool, Raw: rawFalse}, nil
		}
		return replicator.Value{}, fmt.Errorf("boolean value %s is neither t nor f", quoteShort(text))
	case classJSON:
		return replicator.Value{Kind: replicator.KindJSON, Raw: text}, nil
	case classBytea:
		return replicator.Value{Kind: replicator.KindBytes, Raw: text}, nil
	case classTimestampTZ:
		if out, ok := appendISOTimestamp(make([]byte, 0, len(text)+3), text, true); ok {
			return replicator.Value{Kind: replicator.KindTimestampTZ, Raw: out}, nil
		}
	case classTimestamp:
		if out, ok := appendISOTimestamp(make([]byte, 0, len(text)), text, false); ok {
			return replicator.Value{Kind: replicator.KindTimestamp, Raw: out}, nil
		}
	case classDate:
		if len(text) == 10 && text[4] == '-' && text[7] == '-' {
			return replicator.Value{Kind: replicator.KindDate, Raw: text}, nil
		}
	case classTime:
		return replicator.Value{Kind: replicator.KindTime, Raw: text}, nil
	case classArray:
		out, err := appendArray(make([]byte, 0, len(text)+len(text)/4+2), text, e.t.elem, e.t.delim)
		if err != nil {
			return replicator.Value{}, fmt.Errorf("array %s: %w", quoteShort(text), err)
		}
		return replicator.Value{Kind: replicator.KindJSON, Raw: out}, nil
	}
	// Text, and the forms of dates and timestamps that RFC 3339 cannot
	// carry (infinity, BC, years past 9999): PostgreSQL's own text.
	return replicator.Value{Kind: replicator.KindText, Raw: text}, nil
}

// appendISOTimestamp turns PostgreSQL's ISO output ("2024-01-02
// 03:04:05.123456+00") into RFC 3339 ("2024-01-02T03:04:05.123456+00:00").
// Forms RFC 3339 cannot carry (BC dates, years past 9999, infinity,
// second-level offsets) report false.
func appendISOTimestamp(dst, text []byte, zoned bool) ([]byte, bool) {
	if len(text) < 19 || text[4] != '-' || text[10] != ' ' || text[13] != ':' {
		return dst, false
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
			return dst, false
		}
	} else {
		for i := 19; i < len(text); i++ {
			if c := text[i]; c != '.' && (c < '0' || c > '9') {
				return dst, false
			}
		}
	}
	dst = append(dst, text[:10]...)
	dst = append(dst, 'T')
	dst = append(dst, text[11:end]...)
	if zoned {
		dst = append(dst, zone...)
		if len(zone) == 3 {
			dst = append(dst, ':', '0', '0')
		}
	}
	return dst, true
}

func (e *encoder) unix(text []byte) (replicator.Value, error) {
	ms, err := unixMilli(text, e.t.class)
	if err != nil {
		return replicator.Value{}, err
	}
	n := ms
	if e.format == FormatUnixS {
		n = floorDiv(ms, 1000)
	}
	return replicator.Value{Kind: replicator.KindInt, Raw: strconv.AppendInt(nil, n, 10)}, nil
}

// checkFormat reports whether format can apply to a column of type t.
func checkFormat(format string, t *valueType) error {
	switch format {
	case FormatDefault, FormatString, FormatJSON:
		return nil
	case FormatUnixMS, FormatUnixS:
		switch t.class {
		case classTimestampTZ, classTimestamp, classDate:
			return nil
		}
		return fmt.Errorf("format %s needs a timestamp, timestamptz or date column", format)
	}
	return fmt.Errorf("unknown format %q (use unix_ms, unix_s, string or json)", format)
}
