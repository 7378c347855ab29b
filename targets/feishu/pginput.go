package feishu

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/replicator-cdc/replicator"
)

// maxQuotedValue bounds a value quoted in a reason.
const maxQuotedValue = 128

// refusesAs says why PostgreSQL certainly refuses v for column c, whose
// type's name (typeName) is name, or "" when it accepts v or the answer is
// not certain: then the value is sent and the API decides. Only types whose
// input rules are simple and the same in every supported PostgreSQL version
// are checked; forms that newer versions accept (hexadecimal integers, digit
// separators) count as uncertain.
func refusesAs(c *column, name string, v replicator.Value) string {
	if c.IsArray {
		return ""
	}
	if surelyHolds(name, v) {
		return ""
	}
	var holds func(string) bool
	switch name {
	case "smallint", "int2":
		holds = func(s string) bool { return holdsInt(s, 16) }
	case "integer", "int", "int4":
		holds = func(s string) bool { return holdsInt(s, 32) }
	case "bigint", "int8":
		holds = func(s string) bool { return holdsInt(s, 64) }
	case "numeric", "decimal":
		holds = holdsNumeric
	case "real", "float4", "double precision", "float8":
		holds = holdsFloat
	case "boolean", "bool":
		holds = holdsBool
	case "uuid":
		holds = holdsUUID
	case "date", "timestamp", "timestamp without time zone", "timestamptz", "timestamp with time zone":
		holds = func(s string) bool { return holdsDateTime(v, s) }
	default:
		return ""
	}
	// Only a JSON value's text differs from Raw: a JSON string reaches the
	// input function unquoted.
	text := string(v.Raw)
	if v.Kind == replicator.KindJSON {
		text = inputText(v)
	}
	if holds(text) {
		return ""
	}
	return fmt.Sprintf("%s cannot hold %q", c.DataType, replicator.Abbreviate(text, maxQuotedValue))
}

// surelyHolds is the common case decided without copying the value: a
// value of the kind the mapping gives the column's own type, in the form
// PostgreSQL writes it (the default encoding of a column mirrored into a
// column of the same type), certainly holds.
func surelyHolds(name string, v replicator.Value) bool {
	switch name {
	case "bigint", "int8":
		return v.Kind == replicator.KindInt && shortInt(v.Raw, 18)
	case "integer", "int", "int4":
		return v.Kind == replicator.KindInt && shortInt(v.Raw, 9)
	case "smallint", "int2":
		return v.Kind == replicator.KindInt && shortInt(v.Raw, 4)
	case "numeric", "decimal":
		return (v.Kind == replicator.KindNumeric || v.Kind == replicator.KindInt) && plainDecimal(v.Raw)
	case "boolean", "bool":
		return v.Kind == replicator.KindBool && (string(v.Raw) == "true" || string(v.Raw) == "false")
	case "timestamptz", "timestamp with time zone", "timestamp", "timestamp without time zone", "date":
		return (v.Kind == replicator.KindTimestampTZ || v.Kind == replicator.KindTimestamp || v.Kind == replicator.KindDate) &&
			len(v.Raw) > 0 && isDigit(v.Raw[0])
	}
	return false
}

// shortInt reports an optional minus and 1 to n digits: within range of
// any integer type with more than n digits.
func shortInt(b []byte, n int) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > n {
		return false
	}
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// plainDecimal reports an optional minus, digits and at most one point
// with a digit on some side of it.
func plainDecimal(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	digits, points := 0, 0
	for _, c := range b {
		switch {
		case isDigit(c):
			digits++
		case c == '.':
			points++
		default:
			return false
		}
	}
	return digits > 0 && points <= 1
}

// typeName is a data type's name without its modifier: numeric(10,2) is
// numeric.
func typeName(dataType string) string {
	name := strings.ToLower(strings.TrimSpace(dataType))
	if i := strings.IndexByte(name, '('); i >= 0 {
		name = strings.TrimSpace(name[:i])
	}
	return name
}

// pgSpace is C's isspace, which PostgreSQL's input functions skip.
func pgSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func trimPGSpace(s string) string {
	for len(s) > 0 && pgSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && pgSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// newerForm reports a form that PostgreSQL 16 and later accept in integer
// and numeric input (0x, 0o, 0b prefixes; '_' between digits) and earlier
// versions refuse: the target's version is unknown.
func newerForm(unsigned string) bool {
	if len(unsigned) > 1 && unsigned[0] == '0' && strings.ContainsRune("xXoObB", rune(unsigned[1])) {
		return true
	}
	return strings.ContainsRune(unsigned, '_')
}

// holdsInt is int2in/int4in/int8in: optional spaces, an optional sign,
// decimal digits, optional spaces, within the type's range.
func holdsInt(s string, bits int) bool {
	t := trimPGSpace(s)
	digits := t
	if len(digits) > 0 && (digits[0] == '+' || digits[0] == '-') {
		digits = digits[1:]
	}
	if newerForm(digits) {
		return true
	}
	if digits == "" || strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return false
	}
	_, err := strconv.ParseInt(t, 10, bits)
	return err == nil
}

// holdsNumeric is numeric_in's syntax: NaN, [+-]Infinity or [+-]inf in any
// case, or digits with at most one point and an optional exponent, all
// between optional spaces. An exponent beyond what numeric holds is left
// to the API, as are the precision and scale of a numeric(p,s).
func holdsNumeric(s string) bool {
	t := trimPGSpace(s)
	switch strings.ToLower(t) {
	case "nan", "infinity", "+infinity", "-infinity", "inf", "+inf", "-inf":
		return true
	}
	u := t
	if len(u) > 0 && (u[0] == '+' || u[0] == '-') {
		u = u[1:]
	}
	if newerForm(u) {
		return true
	}
	n := decimalPrefix(u)
	return n > 0 && n == len(u)
}

// decimalPrefix is the length of the longest prefix of s that is an
// unsigned decimal number: digits with at most one point (at least one
// digit), then an exponent if one follows in full. 0 when there is none.
func decimalPrefix(s string) int {
	i, digits := 0, 0
	for i < len(s) && isDigit(s[i]) {
		i, digits = i+1, digits+1
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i, digits = i+1, digits+1
		}
	}
	if digits == 0 {
		return 0
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		k := j
		for k < len(s) && isDigit(s[k]) {
			k++
		}
		if k > j {
			i = k
		}
	}
	return i
}

// holdsFloat is float4in/float8in, which read with strtod: refused for
// certain are a text with nothing a number can start with, and a decimal
// number followed by something that cannot continue any number form.
// Hexadecimal floats, nan(...) forms and range limits depend on the C
// library, so they count as accepted.
func holdsFloat(s string) bool {
	t := trimPGSpace(s)
	u := t
	if len(u) > 0 && (u[0] == '+' || u[0] == '-') {
		u = u[1:]
	}
	if u == "" {
		return false
	}
	if c := u[0] | 0x20; c == 'i' || c == 'n' {
		return true
	}
	n := decimalPrefix(u)
	if n == 0 {
		return false
	}
	rest := u[n:]
	return rest == "" || u[:n] == "0" && rest[0]|0x20 == 'x'
}

// holdsBool is boolin: between optional spaces, any case, a prefix of
// "true", "false", "yes" or "no", or "on", "of", "off", "1", "0".
func holdsBool(s string) bool {
	t := strings.ToLower(trimPGSpace(s))
	if t == "" {
		return false
	}
	for _, w := range []string{"true", "false", "yes", "no"} {
		if strings.HasPrefix(w, t) {
			return true
		}
	}
	switch t {
	case "on", "of", "off", "1", "0":
		return true
	}
	return false
}

// holdsUUID is uuid_in: 32 hex digits, a '-' allowed after any group of
// four, optionally in braces; no spaces.
func holdsUUID(s string) bool {
	t := s
	braces := strings.HasPrefix(t, "{")
	if braces {
		if !strings.HasSuffix(t, "}") || len(t) < 2 {
			return false
		}
		t = t[1 : len(t)-1]
	}
	for i := 0; i < 16; i++ {
		if len(t) < 2 || !isHex(t[0]) || !isHex(t[1]) {
			return false
		}
		t = t[2:]
		if len(t) > 0 && t[0] == '-' && i%2 == 1 && i < 15 {
			t = t[1:]
		}
	}
	return t == ""
}

func isHex(c byte) bool {
	return isDigit(c) || c|0x20 >= 'a' && c|0x20 <= 'f'
}

// holdsDateTime is certain only about what no date input can be: an empty
// text, a boolean, a JSON object or array. PostgreSQL's date and time
// input takes a great many forms (words like "today", Julian days, month
// names, the replicator's own ISO forms), so anything else is sent.
func holdsDateTime(v replicator.Value, text string) bool {
	switch v.Kind {
	case replicator.KindBool:
		return false
	case replicator.KindJSON:
		if t := trimPGSpace(string(v.Raw)); t != "" && (t[0] == '{' || t[0] == '[') {
			return false
		}
	}
	return trimPGSpace(text) != ""
}
