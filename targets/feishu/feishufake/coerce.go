package feishufake

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
)

// kind is how the fake stores and compares a PostgreSQL type.
type kind int

const (
	kindText kind = iota
	kindInt16
	kindInt32
	kindInt64
	kindNumeric
	kindFloat32
	kindFloat64
	kindBool
	kindUUID
	kindTimestampTZ
	kindTimestamp
	kindDate
	kindTime
	kindJSON
	kindBytes
)

var kindNames = map[string]kind{
	"smallint": kindInt16, "int2": kindInt16,
	"integer": kindInt32, "int": kindInt32, "int4": kindInt32,
	"bigint": kindInt64, "int8": kindInt64,
	"numeric": kindNumeric, "decimal": kindNumeric,
	"real": kindFloat32, "float4": kindFloat32,
	"double precision": kindFloat64, "float8": kindFloat64,
	"boolean": kindBool, "bool": kindBool,
	"uuid":                        kindUUID,
	"timestamptz":                 kindTimestampTZ,
	"timestamp with time zone":    kindTimestampTZ,
	"timestamp":                   kindTimestamp,
	"timestamp without time zone": kindTimestamp,
	"date":                        kindDate,
	"time":                        kindTime, "time without time zone": kindTime,
	"json": kindJSON, "jsonb": kindJSON,
	"bytea": kindBytes,
}

// kindOf maps a data type name, ignoring a type modifier such as (10,2).
func kindOf(dataType string) kind {
	name := strings.ToLower(strings.TrimSpace(dataType))
	if i := strings.IndexByte(name, '('); i >= 0 {
		name = strings.TrimSpace(name[:i])
	}
	return kindNames[name]
}

var typeNames = map[kind]string{
	kindText: "text", kindInt16: "smallint", kindInt32: "integer", kindInt64: "bigint",
	kindNumeric: "numeric", kindFloat32: "real", kindFloat64: "double precision",
	kindBool: "boolean", kindUUID: "uuid", kindTimestampTZ: "timestamp with time zone",
	kindTimestamp: "timestamp without time zone", kindDate: "date", kindTime: "time",
	kindJSON: "jsonb", kindBytes: "bytea",
}

// coerce converts a value decoded from the request's JSON (with UseNumber)
// the way PostgREST's json_populate_recordset does: JSON null is NULL, json
// columns take the value as it is, and every other column reads the scalar's
// text through the type's input function.
func coerce(k kind, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if k == kindJSON {
		return v, nil
	}
	var text string
	switch x := v.(type) {
	case string:
		text = x
	case json.Number:
		text = x.String()
	case bool:
		text = strconv.FormatBool(x)
	default:
		return nil, fmt.Errorf("cannot cast a JSON %s to %s", jsonType(v), typeNames[k])
	}
	return parseText(k, text)
}

func jsonType(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return "value"
}

func invalid(k kind, s string) error {
	return fmt.Errorf("invalid input syntax for type %s: %q", typeNames[k], s)
}

var (
	numericRe = regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`)
)

// trimSpace drops what C's isspace calls space, as PostgreSQL's input
// functions do; other Unicode spaces stay and are refused.
func trimSpace(s string) string {
	return strings.Trim(s, " \t\n\v\f\r")
}

// uuidHex reads uuid_in's forms: 32 hex digits, a '-' allowed after any
// group of four, optionally in braces, no spaces. It returns the digits in
// lower case.
func uuidHex(s string) (string, bool) {
	t := s
	if strings.HasPrefix(t, "{") {
		if len(t) < 2 || !strings.HasSuffix(t, "}") {
			return "", false
		}
		t = t[1 : len(t)-1]
	}
	var h []byte
	for i := 0; i < 16; i++ {
		if len(t) < 2 || !isHexDigit(t[0]) || !isHexDigit(t[1]) {
			return "", false
		}
		h = append(h, t[:2]...)
		t = t[2:]
		if len(t) > 0 && t[0] == '-' && i%2 == 1 && i < 15 {
			t = t[1:]
		}
	}
	return strings.ToLower(string(h)), t == ""
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'f'
}

var intBits = map[kind]int{kindInt16: 16, kindInt32: 32, kindInt64: 64}

// parseText is the column type's input function: PostgreSQL text to the
// stored value.
func parseText(k kind, s string) (any, error) {
	switch k {
	case kindInt16, kindInt32, kindInt64:
		t := trimSpace(s)
		n, err := strconv.ParseInt(t, 10, intBits[k])
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return nil, fmt.Errorf("value %q is out of range for type %s", s, typeNames[k])
			}
			return nil, invalid(k, s)
		}
		return json.Number(strconv.FormatInt(n, 10)), nil
	case kindNumeric:
		return parseNumeric(s)
	case kindFloat32, kindFloat64:
		return parseFloat(k, s)
	case kindBool:
		return parseBool(s)
	case kindUUID:
		h, ok := uuidHex(s)
		if !ok {
			return nil, invalid(k, s)
		}
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
	case kindTimestampTZ, kindTimestamp, kindDate, kindTime:
		return parseDateTime(k, s)
	case kindJSON:
		d := json.NewDecoder(strings.NewReader(s))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil || d.More() {
			return nil, invalid(k, s)
		}
		return v, nil
	case kindBytes:
		return parseBytea(s)
	}
	if strings.ContainsRune(s, 0) {
		return nil, fmt.Errorf("invalid byte sequence for encoding \"UTF8\": 0x00")
	}
	return s, nil
}

// parseNumeric keeps the digits as written, except that an exponent is
// expanded the way numeric stores it.
func parseNumeric(s string) (any, error) {
	t := trimSpace(s)
	switch strings.ToLower(t) {
	case "nan":
		return "NaN", nil
	case "infinity", "+infinity", "inf", "+inf":
		return "Infinity", nil
	case "-infinity", "-inf":
		return "-Infinity", nil
	}
	if !numericRe.MatchString(t) {
		return nil, invalid(kindNumeric, s)
	}
	t = strings.TrimPrefix(t, "+")
	e := strings.IndexAny(t, "eE")
	if e < 0 {
		return json.Number(t), nil
	}
	exp, err := strconv.Atoi(t[e+1:])
	if err != nil || exp > 1000 || exp < -1000 {
		return nil, fmt.Errorf("value %q overflows numeric format", s)
	}
	mant := t[:e]
	scale := 0
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		scale = len(mant) - i - 1
	}
	r, ok := new(big.Rat).SetString(t)
	if !ok {
		return nil, invalid(kindNumeric, s)
	}
	return json.Number(r.FloatString(max(0, scale-exp))), nil
}

func parseFloat(k kind, s string) (any, error) {
	t := trimSpace(s)
	bits := 64
	if k == kindFloat32 {
		bits = 32
	}
	if strings.EqualFold(strings.TrimLeft(t, "+-"), "nan") && len(t) <= 4 {
		// strtod reads a signed NaN; Go does not.
		return "NaN", nil
	}
	f, err := strconv.ParseFloat(t, bits)
	if err == nil && strings.ContainsRune(t, '_') {
		// Go reads '_' between digits; strtod, which PostgreSQL uses, does not.
		return nil, invalid(k, s)
	}
	if err == nil && f == 0 && nonzeroMantissa(t) {
		// strtod underflows to zero, which PostgreSQL refuses.
		err = &strconv.NumError{Func: "ParseFloat", Num: t, Err: strconv.ErrRange}
	}
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return nil, fmt.Errorf("%q is out of range for type %s", s, typeNames[k])
		}
		return nil, invalid(k, s)
	}
	switch {
	case math.IsNaN(f):
		return "NaN", nil
	case math.IsInf(f, 1):
		return "Infinity", nil
	case math.IsInf(f, -1):
		return "-Infinity", nil
	}
	return json.Number(strconv.FormatFloat(f, 'g', -1, bits)), nil
}

// nonzeroMantissa reports whether a float's digits before its exponent
// are not all zero.
func nonzeroMantissa(t string) bool {
	m := strings.TrimLeft(t, "+-")
	cut := "eE"
	if h, ok := strings.CutPrefix(strings.ToLower(m), "0x"); ok {
		m, cut = h, "pP"
	}
	if i := strings.IndexAny(m, cut); i >= 0 {
		m = m[:i]
	}
	return strings.ContainsAny(m, "123456789abcdefABCDEF")
}

func parseBool(s string) (any, error) {
	t := strings.ToLower(trimSpace(s))
	switch t {
	case "t", "tr", "tru", "true", "y", "ye", "yes", "on", "1":
		return true, nil
	case "f", "fa", "fal", "fals", "false", "n", "no", "of", "off", "0":
		return false, nil
	}
	return nil, invalid(kindBool, s)
}

// parseBytea reads the hex format (\x...) or the escape format.
func parseBytea(s string) (any, error) {
	var b []byte
	if h, ok := strings.CutPrefix(s, `\x`); ok {
		h = strings.Join(strings.Fields(h), "")
		d, err := hex.DecodeString(h)
		if err != nil {
			return nil, invalid(kindBytes, s)
		}
		b = d
	} else {
		for i := 0; i < len(s); i++ {
			if s[i] != '\\' {
				b = append(b, s[i])
				continue
			}
			switch {
			case i+1 < len(s) && s[i+1] == '\\':
				b = append(b, '\\')
				i++
			case i+3 < len(s) && isOctal(s[i+1:i+4]):
				n, _ := strconv.ParseUint(s[i+1:i+4], 8, 8)
				b = append(b, byte(n))
				i += 3
			default:
				return nil, invalid(kindBytes, s)
			}
		}
	}
	return `\x` + hex.EncodeToString(b), nil
}

func isOctal(s string) bool {
	return s[0] >= '0' && s[0] <= '3' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7'
}

// canonical is the text two stored values of kind k share exactly when
// PostgreSQL's equality says they are equal.
func canonical(k kind, v any) string {
	switch k {
	case kindNumeric:
		s := fmt.Sprint(v)
		if r, ok := new(big.Rat).SetString(s); ok {
			return r.RatString()
		}
		return s
	case kindBool:
		if v.(bool) {
			return "t"
		}
		return "f"
	case kindJSON:
		b, _ := json.Marshal(v)
		return string(b)
	}
	return fmt.Sprint(v)
}
