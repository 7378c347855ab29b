package feishufake

import (
	"fmt"
	"strconv"
)

// cond is a filter compiled against a table: columns resolved and values
// read with the column's type.
type cond struct {
	op   string
	col  int
	kind kind
	vals map[string]bool
	kids []*cond
}

func (t *table) compile(n *node) (*cond, error) {
	if n.kids != nil {
		c := &cond{op: n.op}
		for _, k := range n.kids {
			kc, err := t.compile(k)
			if err != nil {
				return nil, err
			}
			c.kids = append(c.kids, kc)
		}
		return c, nil
	}
	i, ok := t.pos[n.col]
	if !ok {
		return nil, fmt.Errorf("column %q does not exist", n.col)
	}
	c := &cond{op: n.op, col: i, kind: t.kinds[i], vals: make(map[string]bool, len(n.vals))}
	if n.op == "is" {
		if n.vals[0] != "null" && c.kind != kindBool {
			return nil, fmt.Errorf("is.%s needs a boolean column, %q is %s", n.vals[0], n.col, typeNames[c.kind])
		}
		c.vals[n.vals[0]] = true
		return c, nil
	}
	for _, v := range n.vals {
		x, err := parseText(c.kind, v)
		if err != nil {
			return nil, fmt.Errorf("column %q: %v", n.col, err)
		}
		c.vals[canonical(c.kind, x)] = true
	}
	return c, nil
}

func (c *cond) match(r *row) bool {
	switch c.op {
	case "and":
		for _, k := range c.kids {
			if !k.match(r) {
				return false
			}
		}
		return true
	case "or":
		for _, k := range c.kids {
			if k.match(r) {
				return true
			}
		}
		return false
	}
	v := r.vals[c.col]
	if c.op == "is" {
		switch {
		case c.vals["null"]:
			return v == nil
		case v == nil:
			return false
		}
		return c.vals["true"] == v.(bool)
	}
	if v == nil {
		return false
	}
	hit := c.vals[canonical(c.kind, v)]
	if c.op == "neq" {
		return !hit
	}
	return hit
}

// byIndex finds the rows an "in" on the one column of a unique index can
// match (a delete by key) through that index: the rows a scan of the whole
// table would match, without the scan, which made every delete of a big
// table slow.
func (t *table) byIndex(c *cond) ([]*row, bool) {
	if c.op != "in" {
		return nil, false
	}
	for _, ix := range t.indexes {
		if len(ix.cols) != 1 || ix.cols[0] != c.col {
			continue
		}
		var out []*row
		for v := range c.vals {
			if r := ix.rows[strconv.Itoa(len(v))+":"+v]; r != nil {
				out = append(out, r)
			}
		}
		return out, true
	}
	return nil, false
}
