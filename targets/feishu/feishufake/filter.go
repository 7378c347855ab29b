package feishufake

import (
	"errors"
	"fmt"
	"strings"
)

// node is a parsed PostgREST filter: a logic operator over children, or a
// condition on one column.
//
// Supported: col=eq.v, col=neq.v, col=in.(v,...), col=is.null|true|false at
// the top level, and=(...) and or=(...) over items such as col.eq.v,
// col.in.(...), and(...), or(...). As in PostgREST, a value inside a list or
// a logic tree may be double-quoted, with a backslash escaping the next
// character; it must be when it contains , ( ) or ". A top-level eq or neq
// value is the rest of the filter, taken literally.
type node struct {
	op   string
	col  string
	vals []string
	kids []*node
}

var errFilter = errors.New("filter")

type filterParser struct {
	s string
	i int
}

func parseFilter(s string) (*node, error) {
	p := &filterParser{s: s}
	n, err := p.top()
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v at offset %d", errFilter, s, err, p.i)
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

func (p *filterParser) top() (*node, error) {
	name, err := p.ident()
	if err != nil {
		return nil, err
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
	op, err := p.ident()
	if err != nil {
		return nil, err
	}
	if err := p.expect('.'); err != nil {
		return nil, err
	}
	n := &node{op: op, col: name}
	switch op {
	case "eq", "neq":
		n.vals = []string{p.s[p.i:]}
		p.i = len(p.s)
	case "in", "is":
		if err := p.operand(n); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unsupported operator %q", op)
	}
	return n, p.end()
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
	op, err := p.ident()
	if err != nil {
		return nil, err
	}
	if err := p.expect('.'); err != nil {
		return nil, err
	}
	n := &node{op: op, col: name}
	switch op {
	case "eq", "neq":
		v, err := p.value()
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
// values in lists and logic trees always quoted.
func (n *node) String() string {
	var b strings.Builder
	switch {
	case n.kids != nil:
		b.WriteString(n.op + "=")
		n.group(&b)
	case n.op == "eq" || n.op == "neq":
		b.WriteString(n.col + "=" + n.op + "." + n.vals[0])
	default:
		b.WriteString(n.col + "=")
		n.item(&b)
	}
	return b.String()
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
