package replicator

import (
	"unicode/utf8"
)

// AppendJSON appends v as JSON following the design's default encoding for
// typed PostgreSQL columns: integers, numerics, floats and booleans as JSON
// numbers and literals with their exact digits, JSON documents embedded as
// they are, NaN and infinities and every other kind as strings, NULL as null.
func AppendJSON(dst []byte, v Value) []byte {
	switch v.Kind {
	case KindNull:
		return append(dst, "null"...)
	case KindInt, KindBool, KindJSON:
		return append(dst, v.Raw...)
	case KindNumeric, KindFloat:
		if isNonFinite(v.Raw) {
			return AppendJSONString(dst, v.Raw)
		}
		return append(dst, v.Raw...)
	default:
		return AppendJSONString(dst, v.Raw)
	}
}

func isNonFinite(raw []byte) bool {
	switch string(raw) {
	case "NaN", "Infinity", "-Infinity", "inf", "-inf", "+inf", "nan":
		return true
	}
	return false
}

// IsNonFinite reports whether a numeric or float value is NaN or an infinity,
// which JSON numbers cannot express.
func IsNonFinite(v Value) bool {
	return (v.Kind == KindNumeric || v.Kind == KindFloat) && isNonFinite(v.Raw)
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string literal. Invalid UTF-8 becomes
// U+FFFD, like encoding/json.
func AppendJSONString(dst []byte, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
