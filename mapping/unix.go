package mapping

import (
	"errors"
	"fmt"
)

var errInfinityUnix = errors.New("infinity has no Unix time")

// unixMilli reads a date, timestamp or timestamptz in PostgreSQL's ISO
// text form, of any year PostgreSQL allows (BC, past 9999), and returns its
// Unix time in milliseconds, rounded down. It computes the count itself:
// Go's time parsing knows only years 0000 to 9999.
func unixMilli(text []byte, c class) (int64, error) {
	if string(text) == "infinity" || string(text) == "-infinity" {
		return 0, fmt.Errorf("%s: %w", text, errInfinityUnix)
	}
	r := isoReader{b: text}
	year := r.number(1, 9)
	if !r.expect('-') {
		return 0, unixError(text)
	}
	month := r.number(2, 2)
	if !r.expect('-') {
		return 0, unixError(text)
	}
	day := r.number(2, 2)
	if year < 0 || month < 1 || month > 12 || day < 1 || day > 31 {
		return 0, unixError(text)
	}
	var sec, fracMS, offset int64
	if c != classDate {
		if !r.expect(' ') {
			return 0, unixError(text)
		}
		h := r.number(2, 2)
		okM := r.expect(':')
		m := r.number(2, 2)
		okS := r.expect(':')
		s := r.number(2, 2)
		if !okM || !okS || h < 0 || m < 0 || s < 0 {
			return 0, unixError(text)
		}
		sec = h*3600 + m*60 + s
		if r.expect('.') {
			digits := 0
			for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
				if digits < 3 {
					fracMS = fracMS*10 + int64(r.b[r.i]-'0')
				}
				digits++
				r.i++
			}
			if digits == 0 {
				return 0, unixError(text)
			}
			for ; digits < 3; digits++ {
				fracMS *= 10
			}
		}
		if c == classTimestampTZ {
			var ok bool
			if offset, ok = r.offset(); !ok {
				return 0, unixError(text)
			}
		}
	}
	if r.expectString(" BC") {
		year = 1 - year // 1 BC is year 0 of the proleptic Gregorian calendar
	}
	if r.i != len(r.b) {
		return 0, unixError(text)
	}
	days := daysFromCivil(year, month, day)
	return (days*86400+sec-offset)*1000 + fracMS, nil
}

func unixError(text []byte) error {
	return fmt.Errorf("%s is not a date or timestamp in PostgreSQL's ISO form", quoteShort(text))
}

// daysFromCivil counts days from 1970-01-01 to a proleptic Gregorian date
// (H. Hinnant's algorithm, exact for every year).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

type isoReader struct {
	b []byte
	i int
}

// number reads between min and max digits; -1 when there are not enough.
func (r *isoReader) number(min, max int) int64 {
	n, k := int64(0), 0
	for r.i < len(r.b) && k < max && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		n = n*10 + int64(r.b[r.i]-'0')
		r.i++
		k++
	}
	if k < min {
		return -1
	}
	return n
}

func (r *isoReader) expect(c byte) bool {
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

func (r *isoReader) expectString(s string) bool {
	if len(r.b)-r.i >= len(s) && string(r.b[r.i:r.i+len(s)]) == s {
		r.i += len(s)
		return true
	}
	return false
}

// offset reads "+HH", "+HH:MM" or "+HH:MM:SS" as seconds east of UTC.
func (r *isoReader) offset() (int64, bool) {
	sign := int64(1)
	switch {
	case r.expect('+'):
	case r.expect('-'):
		sign = -1
	default:
		return 0, false
	}
	h := r.number(2, 2)
	if h < 0 {
		return 0, false
	}
	total := h * 3600
	for _, unit := range []int64{60, 1} {
		if !r.expect(':') {
			break
		}
		n := r.number(2, 2)
		if n < 0 {
			return 0, false
		}
		total += n * unit
	}
	return sign * total, true
}
