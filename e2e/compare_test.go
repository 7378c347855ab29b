package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/state"
)

// colKind says how a source value and a target value of a column compare.
type colKind int

const (
	kindExact    colKind = iota // integers, text, booleans: the same JSON value
	kindNumeric                 // the same number, however many trailing zeros
	kindFloat                   // the same float64
	kindInstant                 // the same instant, whatever the offset
	kindWallTime                // the instant's wall clock in the target's zone, to the second
	kindJSON                    // the same JSON document, numbers by value
	kindJSONText                // text holding the same JSON document
)

// columns says how each column of items compares, and in which zone a
// wall-clock column is written.
type columns struct {
	kinds map[string]colKind
	zone  *time.Location
}

// sourceRows reads items as PostgreSQL's own JSON rendering of each row,
// keyed by id: independent of the daemon's decoding and encoding.
func sourceRows(ctx context.Context, db *pgx.Conn) (map[string]map[string]any, error) {
	return jsonRows(ctx, db, `SELECT id::text, to_jsonb(t)::text FROM items t`)
}

// jsonRows reads a query of (id, a JSON object as text) into rows keyed by
// id.
func jsonRows(ctx context.Context, db *pgx.Conn, query string) (map[string]map[string]any, error) {
	rows, err := db.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[string]any{}
	for rows.Next() {
		var id, text string
		if err := rows.Scan(&id, &text); err != nil {
			return nil, err
		}
		v, err := decodeJSON(text)
		if err != nil {
			return nil, err
		}
		out[id] = v.(map[string]any)
	}
	return out, rows.Err()
}

// keyedRows turns a fake's stored rows into JSON rows keyed by id, so that
// every target's values compare alike (numbers as json.Number); two rows
// with one id are problems.
func keyedRows(stored []map[string]any) (map[string]map[string]any, []string) {
	out := map[string]map[string]any{}
	var problems []string
	for _, r := range stored {
		text, err := json.Marshal(r)
		if err != nil {
			problems = append(problems, fmt.Sprintf("a target row does not encode: %v", err))
			continue
		}
		v, err := decodeJSON(string(text))
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		id := fmt.Sprint(r["id"])
		if _, dup := out[id]; dup {
			problems = append(problems, "two target rows with id "+id)
		}
		out[id] = v.(map[string]any)
	}
	return out, problems
}

func decodeJSON(s string) (any, error) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode %q: %w", s, err)
	}
	return v, nil
}

// diffRows lists how got differs from want, column by column and by each
// column's kind, skipping the source rows skip says the target refuses
// (their target row keeps an earlier state, or is absent); empty means the
// mirror is exact.
func diffRows(want, got map[string]map[string]any, cols columns, skip func(row map[string]any) bool) []string {
	var problems []string
	for id, w := range want {
		if skip(w) {
			continue
		}
		g, ok := got[id]
		if !ok {
			problems = append(problems, "missing id "+id)
			continue
		}
		for col, kind := range cols.kinds {
			wv, wok := w[col]
			gv, gok := g[col]
			if !wok || !gok {
				problems = append(problems, fmt.Sprintf("id %s: column %s present in source %t, target %t", id, col, wok, gok))
				continue
			}
			if !sameValue(kind, cols.zone, wv, gv) {
				problems = append(problems, fmt.Sprintf("id %s: column %s: source %s, target %s", id, col, abbreviate(wv), abbreviate(gv)))
			}
		}
		for col := range g {
			if _, ok := cols.kinds[col]; !ok {
				problems = append(problems, fmt.Sprintf("id %s: unexpected target column %s", id, col))
			}
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			problems = append(problems, "stale id "+id)
		}
	}
	slices.Sort(problems)
	return problems
}

func sameValue(kind colKind, zone *time.Location, want, got any) bool {
	if want == nil || got == nil {
		return want == nil && got == nil
	}
	switch kind {
	case kindNumeric:
		return sameNumber(want, got)
	case kindFloat:
		a, ok1 := want.(json.Number)
		b, ok2 := got.(json.Number)
		if !ok1 || !ok2 {
			return false
		}
		fa, err1 := a.Float64()
		fb, err2 := b.Float64()
		return err1 == nil && err2 == nil && fa == fb
	case kindInstant:
		ws, wok := want.(string)
		gs, gok := got.(string)
		if !wok || !gok {
			return false
		}
		wt, werr := time.Parse(time.RFC3339Nano, ws)
		gt, gerr := time.Parse(time.RFC3339Nano, gs)
		if werr != nil || gerr != nil {
			// infinity and -infinity have no instant: they must match as text.
			return ws == gs
		}
		return wt.Equal(gt)
	case kindWallTime:
		s, ok1 := want.(string)
		d, ok2 := got.(string)
		at, err := time.Parse(time.RFC3339Nano, s)
		return ok1 && ok2 && err == nil && at.In(zone).Format(time.DateTime) == d
	case kindJSON:
		return sameJSON(want, got)
	case kindJSONText:
		d, ok := got.(string)
		if !ok {
			return false
		}
		doc, err := decodeJSON(d)
		return err == nil && sameJSON(want, doc)
	}
	return reflect.DeepEqual(want, got)
}

// sameNumber compares JSON numbers by value with arbitrary precision;
// special values (NaN, Infinity) travel as strings and compare as text.
func sameNumber(want, got any) bool {
	wn, wok := want.(json.Number)
	gn, gok := got.(json.Number)
	if !wok || !gok {
		return reflect.DeepEqual(want, got)
	}
	wr, ok1 := new(big.Rat).SetString(wn.String())
	gr, ok2 := new(big.Rat).SetString(gn.String())
	return ok1 && ok2 && wr.Cmp(gr) == 0
}

func sameJSON(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok || !sameJSON(wv, gv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !sameJSON(w[i], g[i]) {
				return false
			}
		}
		return true
	case json.Number:
		return sameNumber(want, got)
	}
	return reflect.DeepEqual(want, got)
}

func abbreviate(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 120 {
		return fmt.Sprintf("%s… (%d bytes)", b[:120], len(b))
	}
	return string(b)
}

// mirrorDiff compares the source with the target once.
func mirrorDiff(ctx context.Context, db *pgx.Conn, tg target, fk fake) ([]string, int, error) {
	want, err := sourceRows(ctx, db)
	if err != nil {
		return nil, 0, err
	}
	got, problems := keyedRows(fk.rows())
	skip := func(row map[string]any) bool {
		name, _ := row["name"].(string)
		return fk.refuses() && strings.HasPrefix(name, poisonPrefix)
	}
	return append(problems, diffRows(want, got, tg.columns, skip)...), len(want), nil
}

// waitMirror polls until the target's items equal the source's (refused
// rows aside), at most timeout, or until stop reports a reason to give up
// early (the daemon died).
func waitMirror(t *testing.T, db *pgx.Conn, tg target, fk fake, timeout time.Duration, stop func() error) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	var problems []string
	rows := 0
	for time.Since(start) < timeout {
		var err error
		problems, rows, err = mirrorDiff(ctx, db, tg, fk)
		require.NoError(t, err)
		if len(problems) == 0 {
			t.Logf("mirror equals the source (%d rows) after %s", rows, time.Since(start).Round(time.Millisecond))
			return
		}
		if err := stop(); err != nil {
			t.Fatalf("the daemon stopped while the mirror still differed in %d ways (e.g. %s): %v", len(problems), strings.Join(problems[:min(3, len(problems))], "; "), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("the mirror did not equal the source within %s: %d differences (source %d rows), e.g.\n  %s",
		timeout, len(problems), rows, strings.Join(problems[:min(10, len(problems))], "\n  "))
}

// waitStreaming waits until the daemon holds the slot, which it does only
// once the snapshot is confirmed; stop reports the daemon's end.
func waitStreaming(t *testing.T, src database, stop func() error, timeout time.Duration) {
	t.Helper()
	testkit.Eventually(t, timeout, "the daemon to stream", func() bool {
		var active bool
		err := src.db.QueryRow(context.Background(), `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, src.name).Scan(&active)
		if !errors.Is(err, pgx.ErrNoRows) {
			require.NoError(t, err)
		}
		if err := stop(); err != nil {
			t.Fatalf("the daemon stopped before streaming: %v", err)
		}
		return active
	})
}

// slotCatchesUp waits until the slot's confirmed position reaches the
// server's WAL insert position (visible commits may lie past the write
// position under synchronous_commit = off): everything written is acknowledged, so
// every refusal is a dead letter by now.
func slotCatchesUp(t *testing.T, src database, timeout time.Duration, stop func() error) {
	t.Helper()
	ctx := context.Background()
	var target string
	require.NoError(t, src.db.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&target))
	testkit.Eventually(t, timeout, "the slot to confirm "+target, func() bool {
		var done bool
		err := src.db.QueryRow(ctx, `SELECT coalesce(confirmed_flush_lsn >= $2::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = $1`, src.name, target).Scan(&done)
		require.NoError(t, err)
		if err := stop(); err != nil {
			t.Fatalf("the daemon stopped before acknowledging %s: %v", target, err)
		}
		return done
	})
}

// deadLetters reads the dead-letter file; none is no letter.
func deadLetters(t *testing.T, stateDir string) []state.DeadLetter {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(stateDir, state.DeadLetterFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	var out []state.DeadLetter
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var dl state.DeadLetter
		require.NoError(t, json.Unmarshal([]byte(line), &dl), "dead letter %d", i+1)
		out = append(out, dl)
	}
	return out
}

// requireNoDeadLetters fails when the daemon gave up on any record: every
// value of the workload is one the target accepts.
func requireNoDeadLetters(t *testing.T, stateDir string) {
	t.Helper()
	require.Empty(t, deadLetters(t, stateDir), "dead letters were written")
}

// logSummary counts log lines by level and message, the shape of a run at
// a glance.
func logSummary(log string) string {
	counts := map[string]int{}
	for _, line := range strings.Split(log, "\n") {
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &entry) != nil || entry.Msg == "" {
			continue
		}
		counts[entry.Level+" "+entry.Msg]++
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(&b, "\n  %5d× %s", counts[k], k)
	}
	return b.String()
}
