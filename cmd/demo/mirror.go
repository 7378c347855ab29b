package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
)

// kind says how a column's source text and target value are compared. The
// comparison is written from the documented encodings, independently of
// the replicator's code, so that it checks that code rather than repeats it.
type kind int

const (
	kindText   kind = iota
	kindNumber      // integers and numerics: equal as exact rationals
	kindBool
	kindTime // equal instants, at the target's precision
	kindJSON // equal JSON values; a GPTBots TEXT field holds the JSON text
)

type column struct {
	source, target string
	kind           kind
}

// mirror is one source table and the target table it is mirrored to. The
// first column is the key.
type mirror struct {
	source      string
	target      string // the API, for display
	targetTable string
	dumpPath    string // under the fakes' dump URL
	columns     []column
	// precision is the finest time unit the target keeps: GPTBots DATETIME
	// fields drop the fraction of a second.
	precision time.Duration
	// softDelete is the target column a source delete sets to true.
	softDelete string
	// jsonText says JSON is stored as its text (GPTBots TEXT fields), not
	// as the value itself (Feishu jsonb columns).
	jsonText bool
	// seen remembers every key shown so far, so that a deleted row still
	// shows, as gone from both sides.
	seen map[string]bool
}

// sourceRow is a row's columns in PostgreSQL's text form; nil is NULL.
type sourceRow []*string

// targetRow is a row as the fake stores it; an absent column is NULL.
type targetRow map[string]any

// sides is both sides of a mirror at one moment, by canonical key.
type sides struct {
	source map[string]sourceRow
	target map[string]targetRow
}

// read takes the source rows first: a change landing in between then shows
// in the target too early, never too late, so a match is never reported for
// rows the target has not received.
func (m *mirror) read(ctx context.Context, db *pgx.Conn, dumpURL string) (*sides, error) {
	cols := make([]string, len(m.columns))
	for i, c := range m.columns {
		cols[i] = pgx.Identifier{c.source}.Sanitize() + "::text"
	}
	rows, err := db.Query(ctx, fmt.Sprintf("SELECT %s FROM %s", strings.Join(cols, ", "), pgx.Identifier{m.source}.Sanitize()))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", m.source, err)
	}
	st := &sides{source: map[string]sourceRow{}, target: map[string]targetRow{}}
	for rows.Next() {
		row := make(sourceRow, len(m.columns))
		dest := make([]any, len(row))
		for i := range row {
			dest[i] = &row[i]
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read %s: %w", m.source, err)
		}
		st.source[canonical(kindNumber, *row[0], 0)] = row
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", m.source, err)
	}

	targets, err := fetchRows(ctx, dumpURL+"/"+m.dumpPath)
	if err != nil {
		return nil, err
	}
	for _, row := range targets {
		key, ok := targetText(row[m.columns[0].target])
		if !ok {
			return nil, fmt.Errorf("%s table %s holds a row without key %s: %v", m.target, m.targetTable, m.columns[0].target, row)
		}
		st.target[canonical(kindNumber, key, 0)] = row
	}
	if m.seen == nil {
		m.seen = map[string]bool{}
	}
	for k := range st.source {
		m.seen[k] = true
	}
	for k := range st.target {
		m.seen[k] = true
	}
	return st, nil
}

func fetchRows(ctx context.Context, url string) ([]targetRow, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read the fake's rows: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return nil, fmt.Errorf("read the fake's rows: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	dec := json.NewDecoder(resp.Body)
	// Numbers keep their digits: a float64 would round the big key.
	dec.UseNumber()
	var rows []targetRow
	if err := dec.Decode(&rows); err != nil {
		return nil, fmt.Errorf("read the fake's rows: %w", err)
	}
	return rows, nil
}

// verdict says whether one key's target row is what its source row says.
func (m *mirror) verdict(st *sides, key string) (ok bool, why string) {
	src, inSource := st.source[key]
	dst, inTarget := st.target[key]
	switch {
	case !inSource && !inTarget:
		return true, "deleted"
	case !inSource && m.softDelete != "":
		if dst[m.softDelete] == true {
			return true, "soft-deleted"
		}
		return false, "deleted in the source, not yet marked " + m.softDelete
	case !inSource:
		return false, "deleted in the source, not yet in the target"
	case !inTarget:
		return false, "not yet in the target"
	}
	var differ []string
	for i, c := range m.columns {
		want := "NULL"
		if src[i] != nil {
			want = canonical(c.kind, *src[i], m.precision)
		}
		got := m.targetCanonical(c, dst[c.target])
		if want != got {
			differ = append(differ, c.target)
		}
	}
	if m.softDelete != "" && dst[m.softDelete] == true {
		differ = append(differ, m.softDelete)
	}
	if len(differ) > 0 {
		return false, "differs in " + strings.Join(differ, ", ")
	}
	return true, "same"
}

// problems lists what does not match yet, empty once the target mirrors the
// source.
func (m *mirror) problems(st *sides) []string {
	var out []string
	for _, key := range m.keys() {
		if ok, why := m.verdict(st, key); !ok {
			out = append(out, fmt.Sprintf("%s key %s: %s", m.source, key, why))
		}
	}
	return out
}

// keys are the keys seen so far, in numeric order.
func (m *mirror) keys() []string {
	keys := make([]string, 0, len(m.seen))
	for k := range m.seen {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return rat(a).Cmp(rat(b)) })
	return keys
}

// print writes the two sides one above the other, row by row, with the
// target's values as stored, and the verdict at the end of the target's
// line.
func (m *mirror) print(w io.Writer, st *sides) {
	fmt.Fprintf(w, "public.%s → %s table %s\n", m.source, m.target, m.targetTable)
	header := []string{"key", ""}
	for _, c := range m.columns {
		h := c.source
		if c.target != c.source {
			h += "→" + c.target
		}
		header = append(header, h)
	}
	if m.softDelete != "" {
		header = append(header, m.softDelete)
	}
	lines := [][]string{append(header, "")}
	for _, key := range m.keys() {
		srcCells := []string{key, "PostgreSQL"}
		if src, ok := st.source[key]; ok {
			for _, v := range src {
				srcCells = append(srcCells, display(v))
			}
		} else {
			srcCells = append(srcCells, "(no row)")
		}
		dstCells := []string{"", m.target}
		if dst, ok := st.target[key]; ok {
			for _, c := range m.columns {
				dstCells = append(dstCells, displayTarget(dst[c.target]))
			}
			if m.softDelete != "" {
				dstCells = append(dstCells, displayTarget(dst[m.softDelete]))
			}
		} else {
			dstCells = append(dstCells, "(no row)")
		}
		_, why := m.verdict(st, key)
		// The last cell ends the last column: empty, or the verdict.
		lines = append(lines, append(pad(srcCells, len(header)), ""), append(pad(dstCells, len(header)), why))
	}
	// Every line has a cell in every column, since tabwriter aligns a
	// column only over consecutive lines that have it.
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, cells := range lines {
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
	for line := range strings.Lines(buf.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
}

// pad fills cells up to n with empty ones.
func pad(cells []string, n int) []string {
	for len(cells) < n {
		cells = append(cells, "")
	}
	return cells
}

// targetCanonical is a stored target value in canonical form, "NULL" for
// NULL or an absent field.
func (m *mirror) targetCanonical(c column, v any) string {
	if v == nil {
		return "NULL"
	}
	if c.kind == kindJSON && !m.jsonText {
		// The value itself: a JSON string value is not JSON text to parse.
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return canonical(kindJSON, string(b), m.precision)
	}
	text, _ := targetText(v)
	return canonical(c.kind, text, m.precision)
}

func display(v *string) string {
	if v == nil {
		return "NULL"
	}
	return *v
}

func displayTarget(v any) string {
	if text, ok := targetText(v); ok {
		return text
	}
	return "NULL"
}

// targetText renders a stored target value as text: strings as they are,
// numbers with their digits, JSON values as compact JSON. ok is false for
// NULL or an absent field.
func targetText(v any) (text string, ok bool) {
	switch v := v.(type) {
	case nil:
		return "", false
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v), true
		}
		return string(b), true
	}
}

// Time layouts: PostgreSQL's timestamptz text in a UTC session, Feishu's
// RFC 3339, GPTBots' DATETIME (in UTC, the target's configured zone).
var timeLayouts = []string{"2006-01-02 15:04:05.999999-07", time.RFC3339Nano, "2006-01-02 15:04:05"}

// canonical puts a value's text in one form per kind, so that equal values
// compare equal whatever side they come from. Text that does not parse as
// its kind is left as it is, and then differs from the other side's.
func canonical(k kind, text string, precision time.Duration) string {
	switch k {
	case kindNumber:
		if r, ok := new(big.Rat).SetString(text); ok {
			return r.RatString()
		}
	case kindBool:
		switch text {
		case "t", "true":
			return "true"
		case "f", "false":
			return "false"
		}
	case kindTime:
		for _, layout := range timeLayouts {
			if t, err := time.Parse(layout, text); err == nil {
				return t.UTC().Truncate(precision).Format(time.RFC3339Nano)
			}
		}
	case kindJSON:
		dec := json.NewDecoder(strings.NewReader(text))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) == nil {
			// Marshal sorts object keys and drops jsonb's spacing.
			if b, err := json.Marshal(v); err == nil {
				return string(b)
			}
		}
	}
	return text
}

// rat orders canonical keys, which are integers.
func rat(key string) *big.Rat {
	r, ok := new(big.Rat).SetString(key)
	if !ok {
		return new(big.Rat)
	}
	return r
}
