package app

import (
	"encoding/json"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/replicator-cdc/replicator"
)

// targetKey is the canonical text of a row's key values: equal for a
// source row's rendered key and the target row that holds it.
func targetKey(key []string, row map[string]any) string {
	var b strings.Builder
	for _, k := range key {
		s := canonical(row[k])
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	return b.String()
}

func canonical(v any) string {
	switch x := v.(type) {
	case nil:
		return "\x00null"
	case json.Number:
		if r, ok := new(big.Rat).SetString(string(x)); ok {
			return r.RatString()
		}
		return string(x)
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// valueOf turns a target's key value back into a value a writer can
// address the row with.
func valueOf(v any) replicator.Value {
	switch x := v.(type) {
	case nil:
		return replicator.Null
	case json.Number:
		if _, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return replicator.Value{Kind: replicator.KindInt, Raw: []byte(x)}
		}
		return replicator.Value{Kind: replicator.KindNumeric, Raw: []byte(x)}
	case bool:
		return replicator.Value{Kind: replicator.KindBool, Raw: []byte(strconv.FormatBool(x))}
	case string:
		return replicator.Value{Kind: replicator.KindText, Raw: []byte(x)}
	}
	b, _ := json.Marshal(v)
	return replicator.Value{Kind: replicator.KindJSON, Raw: b}
}

// differing lists, sorted, the columns of want whose value row does not
// hold. Columns the target has beyond want are not compared.
func differing(want, row map[string]any) []string {
	var cols []string
	for c, w := range want {
		if !sameValue(w, row[c]) {
			cols = append(cols, c)
		}
	}
	slices.Sort(cols)
	return cols
}

// sameValue compares a rendered value with a stored one after
// normalizing: numbers by value (a number and its text too), timestamps by
// instant (zoneless ones as UTC, as a GPTBots DATETIME comes back), JSON by
// structure, JSON text against the document it holds.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case json.Number:
		return sameNumber(string(x), b)
	case bool:
		switch y := b.(type) {
		case bool:
			return x == y
		case string:
			return strconv.FormatBool(x) == y
		}
		return false
	case string:
		switch y := b.(type) {
		case string:
			return x == y || sameInstant(x, y)
		case json.Number, bool:
			return sameValue(b, a)
		case map[string]any, []any:
			return sameJSONText(x, b)
		}
		return false
	case map[string]any:
		if s, ok := b.(string); ok {
			return sameJSONText(s, a)
		}
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !sameValue(xv, yv) {
				return false
			}
		}
		return true
	case []any:
		if s, ok := b.(string); ok {
			return sameJSONText(s, a)
		}
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func sameNumber(a string, b any) bool {
	var bs string
	switch y := b.(type) {
	case json.Number:
		bs = string(y)
	case string:
		bs = y
	default:
		return false
	}
	if a == bs {
		return true
	}
	ra, okA := new(big.Rat).SetString(a)
	rb, okB := new(big.Rat).SetString(bs)
	return okA && okB && ra.Cmp(rb) == 0
}

func sameJSONText(s string, v any) bool {
	var doc any
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	if d.Decode(&doc) != nil {
		return false
	}
	return sameValue(v, doc)
}

var instantLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
}

func sameInstant(a, b string) bool {
	ta, okA := parseInstant(a)
	tb, okB := parseInstant(b)
	return okA && okB && ta.Equal(tb)
}

func parseInstant(s string) (time.Time, bool) {
	if len(s) < len("2006-01-02 15:04:05") {
		return time.Time{}, false
	}
	for _, l := range instantLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
