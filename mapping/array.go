package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/replicator-cdc/replicator"
)

// maxArrayDepth bounds nesting; PostgreSQL allows 6 dimensions, and a
// domain over an array as the element adds a level per domain.
const maxArrayDepth = 32

var errArrayEnd = errors.New("array literal ends early")

// appendArray transcodes PostgreSQL's array text form (array_out) into a
// JSON array, element by element by the element type, straight into dst:
// no decoding into Go values, so nesting, digits and text stay exact.
// The optional dimension decoration ("[0:1]={…}") is skipped: JSON arrays
// have no lower bounds.
func appendArray(dst, text []byte, elem *valueType, delim byte) ([]byte, error) {
	p := arrayParser{in: text, elem: elem, delim: delim}
	p.skipSpace()
	if p.i < len(p.in) && p.in[p.i] == '[' {
		if err := p.skipDimensions(); err != nil {
			return dst, err
		}
	}
	dst, err := p.array(dst, 0)
	if err != nil {
		return dst, err
	}
	p.skipSpace()
	if p.i != len(p.in) {
		return dst, fmt.Errorf("array literal has junk after its closing brace at byte %d", p.i)
	}
	return dst, nil
}

type arrayParser struct {
	in    []byte
	i     int
	elem  *valueType
	delim byte
}

func isArraySpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func (p *arrayParser) skipSpace() {
	for p.i < len(p.in) && isArraySpace(p.in[p.i]) {
		p.i++
	}
}

// skipDimensions skips "[lo:hi]…=".
func (p *arrayParser) skipDimensions() error {
	for p.i < len(p.in) && p.in[p.i] == '[' {
		end := bytes.IndexByte(p.in[p.i:], ']')
		if end < 0 {
			return errArrayEnd
		}
		p.i += end + 1
	}
	p.skipSpace()
	if p.i >= len(p.in) || p.in[p.i] != '=' {
		return fmt.Errorf("array dimensions are not followed by '='")
	}
	p.i++
	p.skipSpace()
	return nil
}

// array reads "{…}" at p.i.
func (p *arrayParser) array(dst []byte, depth int) ([]byte, error) {
	if depth >= maxArrayDepth {
		return dst, fmt.Errorf("array nested deeper than %d levels", maxArrayDepth)
	}
	if p.i >= len(p.in) || p.in[p.i] != '{' {
		return dst, fmt.Errorf("array literal lacks '{' at byte %d", p.i)
	}
	p.i++
	dst = append(dst, '[')
	p.skipSpace()
	if p.i < len(p.in) && p.in[p.i] == '}' {
		p.i++
		return append(dst, ']'), nil
	}
	for n := 0; ; n++ {
		if n > 0 {
			dst = append(dst, ',')
		}
		p.skipSpace()
		if p.i >= len(p.in) {
			return dst, errArrayEnd
		}
		var err error
		if p.in[p.i] == '{' {
			dst, err = p.array(dst, depth+1)
		} else {
			dst, err = p.element(dst, depth)
		}
		if err != nil {
			return dst, err
		}
		p.skipSpace()
		if p.i >= len(p.in) {
			return dst, errArrayEnd
		}
		switch c := p.in[p.i]; c {
		case '}':
			p.i++
			return append(dst, ']'), nil
		case p.delim:
			p.i++
		default:
			return dst, fmt.Errorf("array literal has %q where %q or '}' belongs, at byte %d", c, p.delim, p.i)
		}
	}
}

// element reads one scalar element: quoted (with backslash escapes) or
// bare (NULL when it is exactly that word, unquoted).
func (p *arrayParser) element(dst []byte, depth int) ([]byte, error) {
	start := p.i
	escaped := false
	var raw []byte
	if p.in[p.i] == '"' {
		p.i++
		start = p.i
		for {
			if p.i >= len(p.in) {
				return dst, errArrayEnd
			}
			c := p.in[p.i]
			if c == '"' {
				break
			}
			if c == '\\' {
				escaped = true
				p.i++
			}
			p.i++
		}
		raw = p.in[start:p.i]
		p.i++
	} else {
		for p.i < len(p.in) {
			c := p.in[p.i]
			if c == p.delim || c == '}' || c == '{' || c == '"' {
				break
			}
			if c == '\\' {
				escaped = true
				p.i++
				if p.i == len(p.in) {
					return dst, errArrayEnd
				}
			}
			p.i++
		}
		raw = p.in[start:p.i]
		if !escaped {
			for len(raw) > 0 && isArraySpace(raw[len(raw)-1]) {
				raw = raw[:len(raw)-1]
			}
			if len(raw) == 4 && bytes.EqualFold(raw, nullWord) {
				return append(dst, "null"...), nil
			}
		}
		if len(raw) == 0 {
			return dst, fmt.Errorf("array literal has an empty element at byte %d", start)
		}
	}
	if escaped {
		switch p.elem.class {
		case classText, classBytea, classDate, classTime:
			return appendUnescapedString(dst, raw), nil
		case classJSON:
			// JSON text always has escaped quotes: unescape it in place.
			n := len(dst)
			dst = appendUnescaped(dst, raw)
			if !json.Valid(dst[n:]) {
				return dst[:n], fmt.Errorf("array element %s is not JSON", quoteShort(raw))
			}
			return dst, nil
		}
		raw = unescape(raw)
	}
	return appendElement(dst, raw, p.elem, depth)
}

var nullWord = []byte("NULL")

// appendUnescapedString writes a text element with its backslashes taken
// out as one JSON string, piece by piece, without a copy of the element.
func appendUnescapedString(dst, raw []byte) []byte {
	dst = append(dst, '"')
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\\')
		if i < 0 {
			return append(appendStringBody(dst, raw), '"')
		}
		dst = appendStringBody(dst, raw[:i])
		raw = raw[i+1:]
		if len(raw) == 0 {
			break
		}
		// The escaped character starts the next piece; a backslash as
		// the escaped character must not start another escape.
		j := 1
		for j < len(raw) && raw[j] != '\\' {
			j++
		}
		dst = appendStringBody(dst, raw[:j])
		raw = raw[j:]
	}
	return append(dst, '"')
}

// appendStringBody appends s JSON-escaped, without the quotes.
func appendStringBody(dst, s []byte) []byte {
	n := len(dst)
	dst = replicator.AppendJSONString(dst, s)
	copy(dst[n:], dst[n+1:len(dst)-1])
	return dst[:len(dst)-2]
}

// unescape removes array-literal backslashes (rare outside text and JSON
// elements).
func unescape(raw []byte) []byte {
	return appendUnescaped(make([]byte, 0, len(raw)), raw)
}

func appendUnescaped(dst, raw []byte) []byte {
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\\')
		if i < 0 || i == len(raw)-1 {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:i]...)
		dst = append(dst, raw[i+1])
		raw = raw[i+2:]
	}
	return dst
}

// appendElement writes one non-NULL element's JSON by the element type, in
// the form the scalar encoder gives a column of that type.
func appendElement(dst, raw []byte, t *valueType, depth int) ([]byte, error) {
	switch t.class {
	case classInt:
		if !isInteger(raw) {
			return dst, fmt.Errorf("array element %s is not an integer", quoteShort(raw))
		}
		return append(dst, raw...), nil
	case classNumeric, classFloat:
		if replicator.IsNonFinite(replicator.Value{Kind: replicator.KindFloat, Raw: raw}) {
			return replicator.AppendJSONString(dst, raw), nil
		}
		if !isJSONNumber(raw) {
			return dst, fmt.Errorf("array element %s is not a number", quoteShort(raw))
		}
		return append(dst, raw...), nil
	case classMoney:
		return appendMoney(dst, raw)
	case classBool:
		switch {
		case len(raw) == 1 && raw[0] == 't':
			return append(dst, "true"...), nil
		case len(raw) == 1 && raw[0] == 'f':
			return append(dst, "false"...), nil
		}
		return dst, fmt.Errorf("array element %s is not a boolean", quoteShort(raw))
	case classJSON:
		if !json.Valid(raw) {
			return dst, fmt.Errorf("array element %s is not JSON", quoteShort(raw))
		}
		return append(dst, raw...), nil
	case classTimestamp, classTimestampTZ:
		n := len(dst)
		dst = append(dst, '"')
		if out, ok := appendISOTimestamp(dst, raw, t.class == classTimestampTZ); ok {
			return append(out, '"'), nil
		}
		return replicator.AppendJSONString(dst[:n], raw), nil
	case classArray:
		p := arrayParser{in: raw, elem: t.elem, delim: t.delim}
		dst, err := p.array(dst, depth+1)
		if err == nil && p.i != len(raw) {
			err = fmt.Errorf("array element %s has junk after its closing brace", quoteShort(raw))
		}
		return dst, err
	}
	return replicator.AppendJSONString(dst, raw), nil
}

func isInteger(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 || (b[0] == '0' && len(b) > 1) {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isJSONNumber reports whether b is a number by JSON's grammar.
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	start := i
	if n := digits(); n == 0 || (n > 1 && b[start] == '0') {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}

// quoteShort quotes a value for an error message, cut to a short prefix:
// errors end up in logs and dead letters, which must not carry whole values.
func quoteShort(b []byte) string {
	const limit = 64
	if len(b) > limit {
		return fmt.Sprintf("%q… (%d bytes)", b[:limit], len(b))
	}
	return fmt.Sprintf("%q", b)
}
