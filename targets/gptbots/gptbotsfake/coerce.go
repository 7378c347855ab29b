package gptbotsfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// dateTimeLayout is the only DATETIME form the API reads and writes.
const dateTimeLayout = time.DateTime

// coerce turns a decoded JSON value (with json.Number for numbers) into the
// stored value of a field of the given type; nil stays nil and clears.
func coerce(typ string, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case TypeInt:
		return coerceInt(v)
	case TypeFloat:
		return coerceFloat(v)
	case TypeBoolean:
		switch b := v.(type) {
		case bool:
			return b, nil
		case string:
			if b == "true" || b == "false" {
				return b == "true", nil
			}
		}
		return nil, fmt.Errorf("%s is not a boolean", describe(v))
	case TypeDateTime:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%s is not a datetime string", describe(v))
		}
		// time.Parse accepts one-digit hours; the API's form has fixed width.
		t, err := time.Parse(dateTimeLayout, s)
		if err != nil || len(s) != len(dateTimeLayout) {
			return nil, fmt.Errorf("%q is not a datetime in the form YYYY-MM-DD HH:MM:SS", s)
		}
		return t.Format(dateTimeLayout), nil
	case TypeText:
		switch s := v.(type) {
		case string:
			return s, nil
		case json.Number:
			return string(s), nil
		}
		return nil, fmt.Errorf("%s is not text", describe(v))
	}
	return nil, fmt.Errorf("unknown field type %q", typ)
}

func coerceInt(v any) (any, error) {
	var s string
	switch n := v.(type) {
	case json.Number:
		s = string(n)
	case string:
		s = n
	default:
		return nil, fmt.Errorf("%s is not an integer", describe(v))
	}
	i, err := strconv.ParseInt(s, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return nil, fmt.Errorf("integer %s is out of range", s)
	}
	if err != nil {
		return nil, fmt.Errorf("%q is not an integer", s)
	}
	return i, nil
}

func coerceFloat(v any) (any, error) {
	var s string
	switch n := v.(type) {
	case json.Number:
		s = string(n)
	case string:
		if !isJSONNumber(n) {
			return nil, fmt.Errorf("%q is not a number", n)
		}
		s = n
	default:
		return nil, fmt.Errorf("%s is not a number", describe(v))
	}
	if f, err := strconv.ParseFloat(s, 64); err != nil || math.IsInf(f, 0) {
		return nil, fmt.Errorf("number %s is out of range", s)
	}
	return json.Number(s), nil
}

// isJSONNumber reports whether s follows the JSON number grammar, so that a
// numeric string is stored as a number that encodes back exactly.
func isJSONNumber(s string) bool {
	i := 0
	digits := func() int {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - start
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	n := digits()
	if n == 0 || (n > 1 && s[i-n] == '0') {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("string %q", x)
	case json.Number:
		return "number " + string(x)
	case bool:
		return fmt.Sprintf("boolean %v", x)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%v", v)
}

// textLen is the length in characters of a stored value's text form, for the
// limit on unique values.
func textLen(v any) int {
	switch x := v.(type) {
	case string:
		return utf8.RuneCountInString(x)
	case json.Number:
		return len(x)
	case int64:
		return len(strconv.FormatInt(x, 10))
	}
	return len(fmt.Sprint(v))
}
