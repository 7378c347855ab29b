package feishufake

import (
	"strconv"
	"strings"
	"time"
)

// parseDateTime reads the ISO 8601 forms PostgreSQL accepts for date, time,
// timestamp and timestamptz: a date, then optionally "T" or a space and a
// time with up to microseconds (rounded), then optionally a zone (Z, UTC,
// ±HH, ±HHMM, ±HH:MM). A timestamptz without zone is taken as UTC, the
// session time zone; timestamp and time ignore a zone, as PostgreSQL does.
func parseDateTime(k kind, s string) (any, error) {
	in := strings.TrimSpace(s)
	switch strings.ToLower(in) {
	case "infinity", "+infinity", "-infinity":
		if k != kindTime {
			return strings.TrimPrefix(strings.ToLower(in), "+"), nil
		}
	}
	p := dtParser{s: in}
	y, mo, d := 2000, 1, 1
	if k != kindTime {
		var ok bool
		if y, mo, d, ok = p.date(); !ok {
			return nil, invalid(k, s)
		}
		if p.done() {
			return formatDateTime(k, y, mo, d, 0, 0, 0, 0, time.UTC, s)
		}
		if !p.eat("T") && !p.eat("t") && !p.eat(" ") {
			return nil, invalid(k, s)
		}
	}
	h, mi, sec, ns, ok := p.clock()
	if !ok {
		return nil, invalid(k, s)
	}
	loc, ok := p.zone()
	if !ok || !p.done() {
		return nil, invalid(k, s)
	}
	return formatDateTime(k, y, mo, d, h, mi, sec, ns, loc, s)
}

func formatDateTime(k kind, y, mo, d, h, mi, sec, ns int, loc *time.Location, orig string) (any, error) {
	if mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59 {
		return nil, invalid(k, orig)
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, ns, loc)
	if t.Day() != d {
		return nil, invalid(k, orig)
	}
	t = t.Round(time.Microsecond)
	switch k {
	case kindTimestampTZ:
		return t.UTC().Format("2006-01-02T15:04:05.999999-07:00"), nil
	case kindTimestamp:
		return t.Format("2006-01-02T15:04:05.999999"), nil
	case kindDate:
		return time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC).Format(time.DateOnly), nil
	}
	return t.Format("15:04:05.999999"), nil
}

type dtParser struct {
	s string
	i int
}

func (p *dtParser) done() bool { return p.i == len(p.s) }

func (p *dtParser) eat(lit string) bool {
	if strings.HasPrefix(p.s[p.i:], lit) {
		p.i += len(lit)
		return true
	}
	return false
}

// digits reads between lo and hi digits.
func (p *dtParser) digits(lo, hi int) (int, bool) {
	j := p.i
	for j < len(p.s) && j-p.i < hi && p.s[j] >= '0' && p.s[j] <= '9' {
		j++
	}
	if j-p.i < lo {
		return 0, false
	}
	n, err := strconv.Atoi(p.s[p.i:j])
	p.i = j
	return n, err == nil
}

func (p *dtParser) date() (y, mo, d int, ok bool) {
	if y, ok = p.digits(4, 6); !ok || !p.eat("-") {
		return 0, 0, 0, false
	}
	if mo, ok = p.digits(2, 2); !ok || !p.eat("-") {
		return 0, 0, 0, false
	}
	d, ok = p.digits(2, 2)
	return y, mo, d, ok
}

func (p *dtParser) clock() (h, mi, sec, ns int, ok bool) {
	if h, ok = p.digits(1, 2); !ok || !p.eat(":") {
		return 0, 0, 0, 0, false
	}
	if mi, ok = p.digits(2, 2); !ok {
		return 0, 0, 0, 0, false
	}
	if !p.eat(":") {
		return h, mi, 0, 0, true
	}
	if sec, ok = p.digits(2, 2); !ok {
		return 0, 0, 0, 0, false
	}
	if !p.eat(".") {
		return h, mi, sec, 0, true
	}
	start := p.i
	if _, ok = p.digits(1, 30); !ok {
		return 0, 0, 0, 0, false
	}
	frac := (p.s[start:p.i] + "000000000")[:10]
	n, _ := strconv.Atoi(frac)
	// Ten digits, so that rounding to nanoseconds is exact before the
	// later rounding to microseconds.
	return h, mi, sec, (n + 5) / 10, true
}

func (p *dtParser) zone() (*time.Location, bool) {
	p.eat(" ")
	switch {
	case p.done():
		return time.UTC, true
	case p.eat("Z"), p.eat("z"), p.eat("UTC"):
		return time.UTC, true
	}
	sign := 1
	switch {
	case p.eat("+"):
	case p.eat("-"):
		sign = -1
	default:
		return nil, false
	}
	h, ok := p.digits(2, 2)
	if !ok {
		return nil, false
	}
	m := 0
	if p.eat(":") {
		if m, ok = p.digits(2, 2); !ok {
			return nil, false
		}
	} else if !p.done() {
		if m, ok = p.digits(2, 2); !ok {
			return nil, false
		}
	}
	if h > 15 || m > 59 {
		return nil, false
	}
	return time.FixedZone("", sign*(h*3600+m*60)), true
}
