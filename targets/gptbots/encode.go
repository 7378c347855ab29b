package gptbots

import (
	"encoding/json"
	"fmt"
	"math/big"
	"time"
	"unicode/utf8"

	"github.com/replicator-cdc/replicator"
)

// Field types of a GPTBots table.
const (
	typeText     = "TEXT"
	typeInt      = "INT"
	typeFloat    = "FLOAT"
	typeDateTime = "DATETIME"
	typeBoolean  = "BOOLEAN"
)

// maxUniqueChars is the documented limit on a unique field's value.
const maxUniqueChars = 256

// timestampLayout reads KindTimestamp values.
const timestampLayout = "2006-01-02T15:04:05.999999999"

// encodeValue appends v as the JSON a field of type typ takes. DATETIME
// values are written in loc; a value the type cannot hold is an error.
func encodeValue(dst []byte, v replicator.Value, typ string, loc *time.Location) ([]byte, error) {
	if v.IsNull() {
		return append(dst, "null"...), nil
	}
	switch typ {
	case typeText:
		return replicator.AppendJSONString(dst, v.Raw), nil
	case typeInt:
		return appendInt(dst, v)
	case typeFloat:
		switch v.Kind {
		case replicator.KindInt, replicator.KindNumeric, replicator.KindFloat:
			if isNumber(v.Raw) {
				return append(dst, v.Raw...), nil
			}
			return nil, fmt.Errorf("%s value %q is not a finite number", v.Kind, v.Raw)
		}
	case typeBoolean:
		if v.Kind == replicator.KindBool {
			return append(dst, v.Raw...), nil
		}
	case typeDateTime:
		return appendDateTime(dst, v, loc)
	default:
		return nil, fmt.Errorf("unknown field type %q", typ)
	}
	return nil, mismatch(v, typ)
}

func mismatch(v replicator.Value, typ string) error {
	return fmt.Errorf("a %s value cannot be written to a %s field", v.Kind, typ)
}

// appendInt writes integers exactly, and numerics and floats whose value is
// a whole number as that integer.
func appendInt(dst []byte, v replicator.Value) ([]byte, error) {
	switch v.Kind {
	case replicator.KindInt:
		if isInteger(v.Raw) && isNumber(v.Raw) {
			return append(dst, v.Raw...), nil
		}
		return nil, fmt.Errorf("int value %q is not an integer", v.Raw)
	case replicator.KindNumeric, replicator.KindFloat:
		var r big.Rat
		if !isNumber(v.Raw) {
			return nil, fmt.Errorf("%s value %q is not a finite number", v.Kind, v.Raw)
		}
		if _, ok := r.SetString(string(v.Raw)); !ok || !r.IsInt() {
			return nil, fmt.Errorf("%s value %s has a fraction; an INT field holds whole numbers only", v.Kind, v.Raw)
		}
		return r.Num().Append(dst, 10), nil
	}
	return nil, mismatch(v, typeInt)
}

// appendDateTime writes "YYYY-MM-DD HH:MM:SS", dropping any fraction.
// Instants are shown in loc; zoneless timestamps and dates are taken as they
// are.
func appendDateTime(dst []byte, v replicator.Value, loc *time.Location) ([]byte, error) {
	var t time.Time
	var err error
	switch v.Kind {
	case replicator.KindTimestampTZ:
		t, err = time.Parse(time.RFC3339Nano, string(v.Raw))
		t = t.In(loc)
	case replicator.KindTimestamp:
		t, err = time.Parse(timestampLayout, string(v.Raw))
	case replicator.KindDate:
		t, err = time.Parse(time.DateOnly, string(v.Raw))
	default:
		return nil, mismatch(v, typeDateTime)
	}
	if err != nil {
		return nil, fmt.Errorf("%s value %q: %w", v.Kind, v.Raw, err)
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.DateTime)
	return append(dst, '"'), nil
}

// textLen is the length in characters of an encoded value as the API
// counts it for unique fields: a string's characters, a literal's bytes.
func textLen(v replicator.Value, typ string, encoded []byte) int {
	switch typ {
	case typeText:
		return utf8.RuneCount(v.Raw)
	case typeDateTime:
		return len(encoded) - 2
	}
	return len(encoded)
}

func isInteger(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isNumber reports whether b is a JSON number literal, which excludes NaN
// and the infinities.
func isNumber(b []byte) bool {
	if len(b) == 0 || !isDigit(b[len(b)-1]) || (b[0] != '-' && !isDigit(b[0])) {
		return false
	}
	return json.Valid(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
