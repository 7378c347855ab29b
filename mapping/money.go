package mapping

import (
	"fmt"
)

// appendMoney writes a money value's text as a JSON number. The text form
// depends on lc_monetary; the replicator's sessions set lc_monetary to C,
// whose form is "$1,234.56" and "-$1,234.56". Accounting parentheses
// ("($1.00)") are read as negative too. Any other form is an error, never
// a guess: a locale whose decimal mark is ',' would turn guesses into
// wrong amounts.
func appendMoney(dst, text []byte) ([]byte, error) {
	b := text
	neg, paren := false, false
	if len(b) > 0 && b[0] == '(' {
		if b[len(b)-1] != ')' {
			return dst, moneyError(text)
		}
		paren, b = true, b[1:len(b)-1]
	}
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	if len(b) > 0 && b[0] == '$' {
		b = b[1:]
	}
	if paren && neg {
		return dst, moneyError(text)
	}
	n := len(dst)
	if neg || paren {
		dst = append(dst, '-')
	}
	digits, group, frac := 0, -1, false
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if digits == 0 && c == '0' && i+1 < len(b) && b[i+1] >= '0' && b[i+1] <= '9' && !frac {
				return dst[:n], moneyError(text)
			}
			dst = append(dst, c)
			digits++
			if group >= 0 && !frac {
				group++
			}
		case c == ',' && !frac && digits > 0 && (group < 0 || group == 3):
			group = 0
		case c == '.' && !frac && digits > 0 && (group < 0 || group == 3):
			dst = append(dst, '.')
			frac, digits = true, 0
		default:
			return dst[:n], moneyError(text)
		}
	}
	if digits == 0 || (!frac && group >= 0 && group != 3) {
		return dst[:n], moneyError(text)
	}
	return dst, nil
}

func moneyError(text []byte) error {
	return fmt.Errorf("money value %s is not in the C locale's form ($1,234.56): the source session's lc_monetary must be C", quoteShort(text))
}
