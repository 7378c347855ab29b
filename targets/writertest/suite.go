package writertest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replicator-cdc/replicator"
)

// writeTimeout bounds one Write of the suite. Every case's writes finish in
// well under a second against a healthy fake; a writer that hangs fails
// the case rather than the whole test binary's -timeout.
const writeTimeout = 20 * time.Second

// Run runs every case of the suite against the harness's writer, each
// case as a parallel subtest with fakes of its own.
func Run(t *testing.T, h Harness) {
	cases := []struct {
		name string
		run  func(*testing.T, Harness)
	}{
		{"PrepareNamesMissingTable", testPrepareMissingTable},
		{"UpsertReadBack", testUpsertReadBack},
		{"LaterBatchOverwrites", testLaterBatchOverwrites},
		{"DeleteRemoves", testDeleteRemoves},
		{"AbsentFieldUntouchedNullClears", testAbsentAndNull},
		{"LargeBatchSplit", testLargeBatchSplit},
		{"TransientFaultsRetried", testTransientFaults},
		{"LostAnswersHarmless", testLostAnswers},
		{"RejectedRecordIsolated", testRejection},
		{"ConcurrentTables", testConcurrentTables},
		{"ContextCancelStopsWrite", testContextCancel},
		{"ContextCancelWhileRateLimited", testCancelWhileRateLimited},
		{"QuotaExactUnderConcurrency", testQuotaExact},
		{"ConcurrentWritesShareRequestBound", testRequestBound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, h)
		})
	}
}

// Spec is the replicator.TableSpec of a suite table.
func Spec(table string) replicator.TableSpec {
	cols := make([]string, len(Columns))
	for i, c := range Columns {
		cols[i] = c.Name
	}
	return replicator.TableSpec{Source: "public." + table, Table: table, Key: []string{"id"}, Columns: cols}
}

// env is one case's target with its tables prepared.
type env struct {
	t      *testing.T
	tg     Target
	w      replicator.Writer
	flight *inFlight
}

func start(t *testing.T, h Harness, tables ...string) *env {
	t.Helper()
	return startWith(t, h, Options{}, tables...)
}

func startWith(t *testing.T, h Harness, opts Options, tables ...string) *env {
	t.Helper()
	tg, flight := newTarget(t, h, opts, tables...)
	specs := make([]replicator.TableSpec, len(tables))
	for i, name := range tables {
		specs[i] = Spec(name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if err := tg.Writer().Prepare(ctx, specs); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	return &env{t: t, tg: tg, w: tg.Writer(), flight: flight}
}

// write applies recs as one batch; an error fails the case.
func (e *env) write(table string, recs ...replicator.Record) []replicator.Rejection {
	e.t.Helper()
	rej, err := e.tryWrite(table, recs)
	if err != nil {
		e.t.Fatalf("Write: %v", err)
	}
	return rej
}

// tryWrite is write for goroutines, which must not call t.Fatal.
func (e *env) tryWrite(table string, recs []replicator.Record) ([]replicator.Rejection, error) {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	return e.w.Write(ctx, replicator.Batch{Table: Spec(table), Records: recs})
}

// writeClean writes a batch that must be accepted whole and applies it to m.
func (e *env) writeClean(table string, m model, recs ...replicator.Record) {
	e.t.Helper()
	sent := cloneRecords(recs)
	if rej := e.write(table, recs...); len(rej) > 0 {
		e.t.Fatalf("%d records rejected, e.g. key %s: %s", len(rej), rej[0].Record.Key[0].Value.Raw, rej[0].Reason)
	}
	m.apply(sent)
}

// cloneRecords copies records deeply. The model is built from a copy taken
// before Write, so that a writer which edits the records it was handed
// cannot make the model agree with its mistake.
func cloneRecords(recs []replicator.Record) []replicator.Record {
	out := make([]replicator.Record, len(recs))
	for i, r := range recs {
		out[i] = r
		out[i].Key = cloneFields(r.Key)
		out[i].Fields = cloneFields(r.Fields)
	}
	return out
}

func cloneFields(fs []replicator.Field) []replicator.Field {
	if fs == nil {
		return nil
	}
	out := make([]replicator.Field, len(fs))
	for i, f := range fs {
		out[i] = replicator.Field{Name: f.Name, Value: replicator.Value{Kind: f.Value.Kind, Raw: slices.Clone(f.Value.Raw)}}
	}
	return out
}

// check fails the case unless the table holds exactly want.
func (e *env) check(table string, want model) {
	e.t.Helper()
	if d := diff(table, want, e.tg.Rows(table)); d != "" {
		e.t.Fatal(d)
	}
}

// diff describes how a fake's table differs from want; "" when it does not.
func diff(table string, want model, raw []map[string]any) string {
	got, err := normalize(raw)
	if err != nil {
		return fmt.Sprintf("table %s: %v", table, err)
	}
	var problems []string
	for id, w := range want {
		g, ok := got[id]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("id %d missing, want %v", id, map[string]any(w)))
		case !reflect.DeepEqual(map[string]any(w), map[string]any(g)):
			problems = append(problems, fmt.Sprintf("id %d is %v, want %v", id, map[string]any(g), map[string]any(w)))
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			problems = append(problems, fmt.Sprintf("id %d should not exist: %v", id, map[string]any(g)))
		}
	}
	if len(problems) == 0 {
		return ""
	}
	slices.Sort(problems)
	return fmt.Sprintf("table %s: %d rows wrong (want %d rows, have %d):\n  %s",
		table, len(problems), len(want), len(got), strings.Join(problems[:min(8, len(problems))], "\n  "))
}

func idField(id int64) replicator.Field {
	return replicator.Field{Name: "id", Value: replicator.Value{Kind: replicator.KindInt, Raw: strconv.AppendInt(nil, id, 10)}}
}

func nameField(s string) replicator.Field {
	return replicator.Field{Name: "name", Value: replicator.Value{Kind: replicator.KindText, Raw: []byte(s)}}
}

func scoreField(f float64) replicator.Field {
	return replicator.Field{Name: "score", Value: replicator.Value{Kind: replicator.KindFloat, Raw: strconv.AppendFloat(nil, f, 'g', -1, 64)}}
}

func flagField(b bool) replicator.Field {
	return replicator.Field{Name: "flag", Value: replicator.Value{Kind: replicator.KindBool, Raw: strconv.AppendBool(nil, b)}}
}

func nullField(col string) replicator.Field {
	return replicator.Field{Name: col, Value: replicator.Null}
}

// upsert is a record for row id setting the key and the given fields only,
// the others being absent (unchanged).
func upsert(id int64, fields ...replicator.Field) replicator.Record {
	return replicator.Record{
		Op:     replicator.OpUpsert,
		Key:    []replicator.Field{idField(id)},
		Fields: append([]replicator.Field{idField(id)}, fields...),
	}
}

// full is an upsert setting every column.
func full(id int64, name string, score float64, flag bool) replicator.Record {
	return upsert(id, nameField(name), scoreField(score), flagField(flag))
}

func remove(id int64) replicator.Record {
	return replicator.Record{Op: replicator.OpDelete, Key: []replicator.Field{idField(id)}}
}

// with returns r with f replacing the field of the same name, or added.
func with(r replicator.Record, f replicator.Field) replicator.Record {
	r.Fields = slices.Clone(r.Fields)
	for i := range r.Fields {
		if r.Fields[i].Name == f.Name {
			r.Fields[i] = f
			return r
		}
	}
	r.Fields = append(r.Fields, f)
	return r
}

// randomBatch makes up to size records on distinct ids below ids, as the
// batcher would hand them over: upserts with some columns absent or NULL,
// and deletes.
func randomBatch(rng *rand.Rand, ids, size int) []replicator.Record {
	seen := make(map[int64]bool, size)
	var recs []replicator.Record
	for range size {
		id := int64(rng.IntN(ids))
		if seen[id] {
			continue
		}
		seen[id] = true
		if rng.IntN(4) == 0 {
			recs = append(recs, remove(id))
			continue
		}
		var fs []replicator.Field
		if rng.IntN(4) != 0 {
			if rng.IntN(5) == 0 {
				fs = append(fs, nullField("name"))
			} else {
				fs = append(fs, nameField(fmt.Sprintf("n%d ✓", rng.IntN(1000))))
			}
		}
		if rng.IntN(4) != 0 {
			if rng.IntN(5) == 0 {
				fs = append(fs, nullField("score"))
			} else {
				fs = append(fs, scoreField(float64(rng.IntN(20000)-10000)/8))
			}
		}
		if rng.IntN(4) != 0 {
			fs = append(fs, flagField(rng.IntN(2) == 0))
		}
		recs = append(recs, upsert(id, fs...))
	}
	return recs
}

// Prepare checks every table before anything is written, and its error
// names the table the user must fix.
func testPrepareMissingTable(t *testing.T, h Harness) {
	tg, _ := newTarget(t, h, Options{}, "present")
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	err := tg.Writer().Prepare(ctx, []replicator.TableSpec{Spec("present"), Spec("absent")})
	if err == nil || !strings.Contains(err.Error(), "absent") {
		t.Fatalf("Prepare of a missing table: got %v, want an error naming table absent", err)
	}
	if n := tg.WriteRequests(); n != 0 {
		t.Errorf("Prepare made %d write requests", n)
	}
}

func testUpsertReadBack(t *testing.T, h Harness) {
	e := start(t, h, "items")
	want := model{}
	e.writeClean("items", want,
		full(1, "plain", 2.5, true),
		full(2, "多语言 ✓ \"quoted\", back\\slash\nnew line\ttab", -0.125, false),
		full(3, "", 0, false),
		upsert(4),
		// Beyond 2^53, where a float64 would lose the key's last digit.
		full(9007199254740993, "big key", 1e15+0.5, true),
		full(-7, "negative key", -1234.75, true),
	)
	e.check("items", want)
}

// Batches of one table arrive in commit order; each later one wins, and a
// key deleted and inserted again across batches ends up inserted.
func testLaterBatchOverwrites(t *testing.T, h Harness) {
	e := start(t, h, "items")
	want := model{}
	var b1, b2 []replicator.Record
	for i := range int64(10) {
		b1 = append(b1, full(i, fmt.Sprint("v1-", i), float64(i), i%2 == 0))
		b2 = append(b2, full(i, fmt.Sprint("v2-", i), float64(i)+0.5, i%2 != 0))
	}
	e.writeClean("items", want, b1...)
	e.check("items", want)
	e.writeClean("items", want, b2...)
	e.check("items", want)
	e.writeClean("items", want, upsert(3, nameField("v3")), remove(5))
	e.check("items", want)
	e.writeClean("items", want, full(5, "reborn", 55, false))
	e.check("items", want)
	e.writeClean("items", want, remove(5), upsert(7, scoreField(-1)))
	e.check("items", want)
}

func testDeleteRemoves(t *testing.T, h Harness) {
	e := start(t, h, "items")
	want := model{}
	for i := range int64(6) {
		e.writeClean("items", want, full(i, fmt.Sprint("row ", i), float64(i), true))
	}
	// Deletes mixed with upserts, and a delete of a row that never was.
	e.writeClean("items", want, remove(2), remove(4), remove(100), upsert(7, nameField("seven")), upsert(1, nameField("one")))
	e.check("items", want)
	// Deleting again what is gone is no error: redelivery after a crash
	// repeats deletes.
	e.writeClean("items", want, remove(2), remove(4))
	e.check("items", want)
}

// A field the record does not carry (an unchanged TOASTed value) is left
// as it is on the target, also when other records of the request carry
// it; a NULL field clears the value.
func testAbsentAndNull(t *testing.T, h Harness) {
	e := start(t, h, "items")
	want := model{}
	e.writeClean("items", want, full(1, "toasted", 1.5, true), full(2, "keep", 2.5, false), full(3, "x", 3, true))
	e.writeClean("items", want,
		upsert(1, nullField("score"), flagField(false)),
		upsert(2, nullField("name")),
		upsert(3, nameField("y"), scoreField(4), nullField("flag")),
		upsert(4, flagField(true)),
		full(5, "whole", 5, false),
	)
	e.check("items", want)
	if want[1]["name"] != "toasted" || want[2]["score"] != 2.5 {
		t.Fatal("the model itself is wrong")
	}
}

func testLargeBatchSplit(t *testing.T, h Harness) {
	e := start(t, h, "items")
	per := e.tg.MaxBatchRows()
	n := 2*per + 7
	want := model{}
	var ups, dels []replicator.Record
	for i := range int64(n) {
		ups = append(ups, full(i, fmt.Sprint("bulk ", i), float64(i)/4, i%3 == 0))
		if i%2 == 0 {
			dels = append(dels, remove(i))
		}
	}
	before := e.tg.WriteRequests()
	e.writeClean("items", want, ups...)
	if got, least := e.tg.WriteRequests()-before, (n+per-1)/per; got < least {
		t.Errorf("%d upserts sent in %d requests; at most %d fit in one, so at least %d are needed", n, got, per, least)
	}
	e.check("items", want)
	e.writeClean("items", want, dels...)
	e.check("items", want)
}

// A failure that leaves the table unchanged or changed (5xx, a dropped
// connection, a lost answer, throttling) is retried inside Write until the
// table is exact.
func testTransientFaults(t *testing.T, h Harness) {
	for _, f := range Faults {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			e := start(t, h, "items")
			want := model{}
			e.writeClean("items", want, full(1, "a", 1, true), full(2, "b", 2, false), full(3, "c", 3, true))
			before := e.tg.WriteRequests()
			e.tg.InjectFaults(f, f)
			e.writeClean("items", want, full(1, "a2", 1.25, false), full(4, "d", 4, true))
			if n := e.tg.WriteRequests() - before; n < 3 {
				t.Errorf("%d write requests for one request that failed twice; the faults were not met", n)
			}
			e.check("items", want)
			e.tg.InjectFaults(f)
			e.writeClean("items", want, remove(2), upsert(3, nullField("name")))
			e.check("items", want)
		})
	}
	t.Run("random", func(t *testing.T) {
		t.Parallel()
		e := start(t, h, "items")
		e.tg.SetFaultRate(0.3, Faults...)
		rng := rand.New(rand.NewPCG(3, 4))
		want := model{}
		for range 8 {
			e.writeClean("items", want, randomBatch(rng, 40, 25)...)
			e.check("items", want)
		}
	})
}

// An answer lost after the change was applied makes the writer send the
// same request again, which must leave the same table: no duplicate rows,
// no error for a delete that finds nothing the second time.
func testLostAnswers(t *testing.T, h Harness) {
	e := start(t, h, "items")
	want := model{}
	for _, batch := range [][]replicator.Record{
		{full(1, "a", 1, true), full(2, "b", 2, true), full(3, "c", 3, false)},
		{upsert(1, nameField("a2")), upsert(2, nullField("score")), full(4, "d", 4, true)},
		{remove(3), remove(4)},
		{full(3, "c again", 3.5, true)},
	} {
		before := e.tg.WriteRequests()
		e.tg.InjectFaults(FaultLostAnswer, FaultLostAnswer)
		e.writeClean("items", want, batch...)
		if n := e.tg.WriteRequests() - before; n < 3 {
			t.Errorf("%d write requests; two answers were lost, so at least 3 were needed", n)
		}
		e.check("items", want)
	}
}

// A record the target refuses for good comes back as a rejection, intact,
// with a reason; the rest of its batch lands, and the refused record's row
// keeps its earlier state.
func testRejection(t *testing.T, h Harness) {
	e := start(t, h, "items")
	want := model{}
	e.writeClean("items", want, full(3, "old", 1, true))
	poison := e.tg.Poison(t)
	var recs []replicator.Record
	for i := range int64(20) {
		r := full(i, fmt.Sprint("row ", i), float64(i), true)
		if i == 3 || i == 7 {
			r = with(r, poison)
		}
		recs = append(recs, r)
	}
	recs = append(recs, remove(99))
	sent := cloneRecords(recs)
	rej := e.write("items", recs...)
	var ids []string
	for _, r := range rej {
		ids = append(ids, string(r.Record.Key[0].Value.Raw))
		if r.Reason == "" {
			t.Errorf("rejection of %s has no reason", r.Record.Key[0].Value.Raw)
		}
		if v, ok := r.Record.Field(poison.Name); !ok || !reflect.DeepEqual(v, poison.Value) || r.Record.Op != replicator.OpUpsert {
			t.Errorf("rejection of %s does not carry the record as written: %+v", r.Record.Key[0].Value.Raw, r.Record)
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"3", "7"}) {
		t.Fatalf("rejected keys %v, want [3 7]", ids)
	}
	var landed []replicator.Record
	for _, r := range sent {
		if k := string(r.Key[0].Value.Raw); k != "3" && k != "7" {
			landed = append(landed, r)
		}
	}
	want.apply(landed)
	e.check("items", want)
	// The writer is not stuck on the refused rows.
	e.writeClean("items", want, full(7, "fixed", 7, false), upsert(3, nameField("fixed too")))
	e.check("items", want)
}

// One writer serves several tables at once: batches of two tables are
// written concurrently, under faults, and both tables end exact.
func testConcurrentTables(t *testing.T, h Harness) {
	tables := []string{"alpha", "beta"}
	e := start(t, h, tables...)
	e.tg.SetFaultRate(0.2, FaultServerError, FaultDrop, FaultLostAnswer)
	wants := make([]model, len(tables))
	var wg sync.WaitGroup
	for i, table := range tables {
		wants[i] = model{}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 99))
			for b := range 10 {
				recs := randomBatch(rng, 30, 20)
				sent := cloneRecords(recs)
				rej, err := e.tryWrite(table, recs)
				if err != nil || len(rej) > 0 {
					t.Errorf("table %s batch %d: error %v, %d rejections", table, b, err, len(rej))
					return
				}
				wants[i].apply(sent)
			}
		})
	}
	wg.Wait()
	e.tg.SetFaultRate(0)
	for i, table := range tables {
		if d := diff(table, wants[i], e.tg.Rows(table)); d != "" {
			t.Error(d)
		}
	}
}

// Write gives up at once when its context ends, with the context's error,
// even while the target keeps failing.
func testContextCancel(t *testing.T, h Harness) {
	e := start(t, h, "items")
	e.tg.SetFaultRate(1, FaultServerError)
	const after = 150 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(after, cancel)
	defer timer.Stop()
	began := time.Now()
	_, err := e.w.Write(ctx, replicator.Batch{Table: Spec("items"), Records: []replicator.Record{full(1, "a", 1, true), remove(2)}})
	took := time.Since(began)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Write returned %v, want an error wrapping context.Canceled", err)
	}
	if took > after+time.Second {
		t.Errorf("Write returned %s after its context was canceled", took-after)
	}
	if e.tg.WriteRequests() < 2 {
		t.Errorf("%d write requests before the cancel; the writer should retry until then", e.tg.WriteRequests())
	}

	// A context already canceled stops Write before it waits for anything.
	began = time.Now()
	_, err = e.w.Write(ctx, replicator.Batch{Table: Spec("items"), Records: []replicator.Record{full(1, "a", 1, true)}})
	if !errors.Is(err, context.Canceled) || time.Since(began) > time.Second {
		t.Errorf("Write with a canceled context: %v after %s", err, time.Since(began))
	}
}

// A cancel that comes while the writer waits for its own rate limiter is
// a cancel too: the pipeline and app.Run tell a clean stop from a failure
// by context.Canceled, so a writer must not report it as anything else.
func testCancelWhileRateLimited(t *testing.T, h Harness) {
	e := startWith(t, h, Options{RequestsPerSecond: 2}, "items")
	// Two column sets and a delete: at least two requests, of which all
	// but the first wait about half a second each for the limiter.
	recs := []replicator.Record{full(1, "a", 1, true), upsert(2, nameField("b")), remove(3)}
	const after = 150 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(after, cancel)
	defer timer.Stop()
	began := time.Now()
	_, err := e.w.Write(ctx, replicator.Batch{Table: Spec("items"), Records: recs})
	took := time.Since(began)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Write canceled while rate-limited returned %v, want an error wrapping context.Canceled", err)
	}
	if took > after+time.Second {
		t.Errorf("Write returned %s after its context was canceled", took-after)
	}
}
