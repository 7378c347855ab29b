package feishufake

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// node is a parsed PostgREST filter: a logic operator over children, or a
// condition on one column.
//
// The filter parameter, once the URL's query is decoded, is read the way
// the API reads it: as a query string of its own. It is split on '&', each
// part is split on its first '=', and both halves are percent-decoded once
// more with url.QueryUnescape ('+' becomes a space, a bad escape is an
// error). Several parts must all hold. Each name=value pair then follows
// PostgREST's grammar.
//
// Supported: col=eq.v, col=neq.v, col=in.(v,...), col=is.null|true|false at
// the top level, and=(...) and or=(...) over items such as col.eq.v,
// col.in.(...), and(...), or(...). As in PostgREST, a value inside a list or
// a logic tree may be double-quoted, with a backslash escaping the next
// character; it must be when it contains , ( ) or ". A top-level eq or neq
// value is the rest of its decoded part, taken literally.
type node struct {
	op   string
	col  string
	vals []string
	kids []*node
	// params marks the "and" of several query parameters (a&b).
	params bool
}

var errFilter = errors.New("filter")

type filterParser struct {
	s string
	i int
}

func parseFilter(s string) (*node, error) {
	var params []*node
	for part := range strings.SplitSeq(s, "&") {
		n, err := parseParam(part)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %v", errFilter, s, err)
		}
		params = append(params, n)
	}
	if len(params) == 1 {
		return params[0], nil
	}
	return &node{op: "and", kids: params, params: true}, nil
}

// parseParam reads one name=value part of the filter.
func parseParam(part string) (*node, error) {
	rawName, rawValue, ok := strings.Cut(part, "=")
	if !ok {
		return nil, fmt.Errorf("%q is not name=value", part)
	}
	name, err := url.QueryUnescape(rawName)
	if err != nil {
		return nil, err
	}
	value, err := url.QueryUnescape(rawValue)
	if err != nil {
		return nil, err
	}
	p := &filterParser{s: name + "=" + value}
	n, err := p.top(len(name))
	if err != nil {
		return nil, fmt.Errorf("%v at offset %d of %q", err, p.i, p.s)
	}
	return n, nil
}

func (p *filterParser) peek(c byte) bool { return p.i < len(p.s) && p.s[p.i] == c }

func (p *filterParser) expect(c byte) error {
	if !p.peek(c) {
		return fmt.Errorf("expected %q", c)
	}
	p.i++
	return nil
}

func (p *filterParser) end() error {
	if p.i != len(p.s) {
		return errors.New("unexpected text")
	}
	return nil
}

// ident reads a column or operator name.
func (p *filterParser) ident() (string, error) {
	j := p.i
	for j < len(p.s) && !strings.ContainsRune(`.,()=":\ `, rune(p.s[j])) && p.s[j] > ' ' {
		j++
	}
	if j == p.i {
		return "", errors.New("expected a name")
	}
	name := p.s[p.i:j]
	p.i = j
	return name, nil
}

// top reads name=value, where the name is the first nameLen bytes.
func (p *filterParser) top(nameLen int) (*node, error) {
	name, err := p.ident()
	if err != nil {
		return nil, err
	}
	if p.i != nameLen {
		return nil, fmt.Errorf("%q is not a column name", p.s[:nameLen])
	}
	if err := p.expect('='); err != nil {
		return nil, err
	}
	if name == "and" || name == "or" {
		n, err := p.group(name)
		if err != nil {
			return nil, err
		}
		return n, p.end()
	}
	n, err := p.condition(name, p.rest)
	if err != nil {
		return nil, err
	}
	return n, p.end()
}

// rest takes the rest of the parameter: a top-level eq or neq value is
// the whole raw remainder.
func (p *filterParser) rest() (string, error) {
	v := p.s[p.i:]
	p.i = len(p.s)
	return v, nil
}

// group reads "(item,item,...)" after and/or.
func (p *filterParser) group(op string) (*node, error) {
	if err := p.expect('('); err != nil {
		return nil, err
	}
	n := &node{op: op}
	for {
		kid, err := p.item()
		if err != nil {
			return nil, err
		}
		n.kids = append(n.kids, kid)
		if !p.peek(',') {
			break
		}
		p.i++
	}
	return n, p.expect(')')
}

func (p *filterParser) item() (*node, error) {
	name, err := p.ident()
	if err != nil {
		return nil, err
	}
	if (name == "and" || name == "or") && p.peek('(') {
		return p.group(name)
	}
	if err := p.expect('.'); err != nil {
		return nil, err
	}
	return p.condition(name, p.value)
}

// condition reads "op.operand" on column col; the operand of eq and neq
// is read by value.
func (p *filterParser) condition(col string, value func() (string, error)) (*node, error) {
	op, err := p.ident()
	if err != nil {
		return nil, err
	}
	if err := p.expect('.'); err != nil {
		return nil, err
	}
	n := &node{op: op, col: col}
	switch op {
	case "eq", "neq":
		v, err := value()
		if err != nil {
			return nil, err
		}
		n.vals = []string{v}
	case "in", "is":
		if err := p.operand(n); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unsupported operator %q", op)
	}
	return n, nil
}

// operand reads the list of in or the word of is.
func (p *filterParser) operand(n *node) error {
	if n.op == "is" {
		w, err := p.ident()
		if err != nil {
			return err
		}
		if w != "null" && w != "true" && w != "false" {
			return fmt.Errorf("is.%s: expected null, true or false", w)
		}
		n.vals = []string{w}
		return nil
	}
	if err := p.expect('('); err != nil {
		return err
	}
	n.vals = []string{}
	if p.peek(')') {
		p.i++
		return nil
	}
	for {
		v, err := p.value()
		if err != nil {
			return err
		}
		n.vals = append(n.vals, v)
		if !p.peek(',') {
			break
		}
		p.i++
	}
	return p.expect(')')
}

// value reads a quoted value, or an unquoted one up to the next , or ).
func (p *filterParser) value() (string, error) {
	if p.peek('"') {
		p.i++
		var b strings.Builder
		for p.i < len(p.s) {
			c := p.s[p.i]
			p.i++
			switch c {
			case '"':
				if p.i < len(p.s) && !p.peek(',') && !p.peek(')') {
					return "", errors.New("text after a quoted value")
				}
				return b.String(), nil
			case '\\':
				if p.i == len(p.s) {
					return "", errors.New("unterminated escape")
				}
				b.WriteByte(p.s[p.i])
				p.i++
			default:
				b.WriteByte(c)
			}
		}
		return "", errors.New("unterminated quoted value")
	}
	j := p.i
	for j < len(p.s) && p.s[j] != ',' && p.s[j] != ')' {
		if p.s[j] == '"' || p.s[j] == '(' {
			p.i = j
			return "", fmt.Errorf("%q in an unquoted value", p.s[j])
		}
		j++
	}
	v := p.s[p.i:j]
	p.i = j
	return v, nil
}

// String renders the filter so that it parses back to the same tree:
// values in lists and logic trees always quoted, names and values
// percent-encoded for the second decoding.
func (n *node) String() string {
	if n.params {
		parts := make([]string, len(n.kids))
		for i, k := range n.kids {
			parts[i] = k.String()
		}
		return strings.Join(parts, "&")
	}
	var b strings.Builder
	var name string
	switch {
	case n.kids != nil:
		name = n.op
		n.group(&b)
	case n.op == "eq" || n.op == "neq":
		name = n.col
		b.WriteString(n.op + "." + n.vals[0])
	default:
		name = n.col
		n.item(&b)
	}
	return url.QueryEscape(name) + "=" + url.QueryEscape(b.String())
}

func (n *node) group(b *strings.Builder) {
	b.WriteByte('(')
	for i, k := range n.kids {
		if i > 0 {
			b.WriteByte(',')
		}
		if k.kids != nil {
			b.WriteString(k.op)
			k.group(b)
			continue
		}
		b.WriteString(k.col + ".")
		k.item(b)
	}
	b.WriteByte(')')
}

// item writes "op.operand".
func (n *node) item(b *strings.Builder) {
	b.WriteString(n.op + ".")
	switch n.op {
	case "is":
		b.WriteString(n.vals[0])
	case "in":
		b.WriteByte('(')
		for i, v := range n.vals {
			if i > 0 {
				b.WriteByte(',')
			}
			quoteValue(b, v)
		}
		b.WriteByte(')')
	default:
		quoteValue(b, n.vals[0])
	}
}

func quoteValue(b *strings.Builder, v string) {
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
}

// SelectText parses filter as the API does and says which rows it selects,
// every column being text and each row holding one value per column of
// cols. It lets a client's tests check the filters they build, byte for
// byte, without a server.
func SelectText(filter string, cols []string, rows [][]string) ([]bool, error) {
	n, err := parseFilter(filter)
	if err != nil {
		return nil, err
	}
	t := &table{pos: make(map[string]int, len(cols))}
	for i, c := range cols {
		t.pos[c] = i
		t.kinds = append(t.kinds, kindText)
	}
	c, err := t.compile(n)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(rows))
	for i, vals := range rows {
		r := &row{vals: make([]any, len(vals))}
		for j, v := range vals {
			r.vals[j] = v
		}
		out[i] = c.match(r)
	}
	return out, nil
}
