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

// valueArena is the buffer of a row's values, so that a row costs one
// allocation rather than one per value. held is the capacity of every
// buffer values were written into: the record keeps each of them alive
// whole, unused room included, and is charged for it (Record.Spare).
type valueArena struct {
	buf  []byte
	held int
}

// take appends raw to the arena and returns the arena's copy.
func (a *valueArena) take(raw []byte) []byte {
	start := len(a.buf)
	return keep(a, append(a.buf, raw...), start)
}

// encode transcodes text. Values whose form differs from the text are
// appended to the arena; a nil arena gives each such value a buffer of its
// own.
func (e *encoder) encode(arena *valueArena, text []byte) (replicator.Value, error) {
	switch e.format {
	case FormatString:
		return replicator.Value{Kind: replicator.KindText, Raw: text}, nil
	case FormatUnixMS, FormatUnixS:
		return e.unix(arena, text)
	case FormatJSON:
		v, err := e.natural(arena, text)
		if err != nil {
			return v, err
		}
		dst := room(arena, len(v.Raw)+len(v.Raw)/8+2)
		start := len(dst)
		return replicator.Value{Kind: replicator.KindText, Raw: keep(arena, replicator.AppendJSON(dst, v), start)}, nil
	}
	return e.natural(arena, text)
}

// transcodes reports whether the encoder's values take room in the arena,
// and at most how much for a text of n bytes.
func (e *encoder) transcodes(n int) int {
	switch e.format {
	case FormatString:
		return 0
	case FormatUnixMS, FormatUnixS:
		return 24
	case FormatJSON:
		return 2*n + 8
	}
	switch e.t.class {
	case classMoney, classTimestampTZ, classTimestamp:
		return n + 8
	case classArray:
		return n + n/4 + 8
	}
	return 0
}

// room returns the arena's buffer to append at least n bytes to, or a
// buffer of its own when there is no arena.
func room(arena *valueArena, n int) []byte {
	if arena == nil {
		return make([]byte, 0, n)
	}
	if cap(arena.buf)-len(arena.buf) < n {
		arena.buf = make([]byte, 0, max(n, 256))
		arena.held += cap(arena.buf)
	}
	return arena.buf
}

// keep makes dst, which room returned and a value was appended to from
// start, the arena's new end, and returns the value's bytes.
func keep(arena *valueArena, dst []byte, start int) []byte {
	if arena == nil {
		return dst[start:]
	}
	if cap(dst) != cap(arena.buf) {
		// The append outgrew the buffer and moved to a larger one.
		arena.held += cap(dst)
	}
	arena.buf = dst
	return dst[start:len(dst):len(dst)]
}

func (e *encoder) natural(arena *valueArena, text []byte) (replicator.Value, error) {
	switch e.t.class {
	case classInt:
		return replicator.Value{Kind: replicator.KindInt, Raw: text}, nil
	case classNumeric:
		return replicator.Value{Kind: replicator.KindNumeric, Raw: text}, nil
	case classFloat:
		return replicator.Value{Kind: replicator.KindFloat, Raw: text}, nil
	case classMoney:
		dst := room(arena, len(text))
		start := len(dst)
		out, err := appendMoney(dst, text)
		if err != nil {
			return replicator.Value{}, err
		}
		return replicator.Value{Kind: replicator.KindNumeric, Raw: keep(arena, out, start)}, nil
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
		dst := room(arena, len(text)+4)
		if out, ok := appendISOTimestamp(dst, text, true); ok {
			return replicator.Value{Kind: replicator.KindTimestampTZ, Raw: keep(arena, out, len(dst))}, nil
		}
	case classTimestamp:
		dst := room(arena, len(text)+1)
		if out, ok := appendISOTimestamp(dst, text, false); ok {
			return replicator.Value{Kind: replicator.KindTimestamp, Raw: keep(arena, out, len(dst))}, nil
		}
	case classDate:
		if len(text) == 10 && text[4] == '-' && text[7] == '-' {
			return replicator.Value{Kind: replicator.KindDate, Raw: text}, nil
		}
	case classTime:
		return replicator.Value{Kind: replicator.KindTime, Raw: text}, nil
	case classArray:
		dst := room(arena, len(text)+len(text)/4+2)
		out, err := appendArray(dst, text, e.t.elem, e.t.delim)
		if err != nil {
			return replicator.Value{}, fmt.Errorf("array %s: %w", quoteShort(text), err)
		}
		return replicator.Value{Kind: replicator.KindJSON, Raw: keep(arena, out, len(dst))}, nil
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

func (e *encoder) unix(arena *valueArena, text []byte) (replicator.Value, error) {
	ms, err := unixMilli(text, e.t.class)
	if err != nil {
		return replicator.Value{}, err
	}
	n := ms
	if e.format == FormatUnixS {
		n = floorDiv(ms, 1000)
	}
	dst := room(arena, 20)
	return replicator.Value{Kind: replicator.KindInt, Raw: keep(arena, strconv.AppendInt(dst, n, 10), len(dst))}, nil
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
