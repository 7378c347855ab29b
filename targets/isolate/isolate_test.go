package isolate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// sim is a table that refuses any request holding a bad item (as a
// PostgreSQL statement does), optionally naming the first bad item's
// value, and fails as a whole for its first down answers.
type sim struct {
	bad      map[int]bool
	named    bool // refusals pin the items carrying the first bad value
	down     int  // answers (sends and probes) that fail as a whole
	landed   map[int]bool
	sends    int
	probes   int
	maxGroup int
}

func newSim(bad ...int) *sim {
	s := &sim{bad: map[int]bool{}, landed: map[int]bool{}}
	for _, b := range bad {
		s.bad[b] = true
	}
	return s
}

func (s *sim) Send(_ context.Context, items []int) (Answer, error) {
	s.sends++
	s.maxGroup = max(s.maxGroup, len(items))
	if s.down > 0 {
		s.down--
		return Answer{Kind: TableFailing, Reason: "table not found"}, nil
	}
	for i, it := range items {
		if !s.bad[it] {
			continue
		}
		a := Answer{Kind: Refused, Reason: fmt.Sprintf("bad value %d", it)}
		if s.named {
			a.Bad = []Bad{{Index: i, Reason: a.Reason}}
		}
		return a, nil
	}
	for _, it := range items {
		s.landed[it] = true
	}
	return Answer{Kind: Landed}, nil
}

func (s *sim) Probe(context.Context) (Answer, error) {
	s.probes++
	if s.down > 0 {
		s.down--
		return Answer{Kind: TableFailing, Reason: "table not found"}, nil
	}
	return Answer{Kind: Landed}, nil
}

func items(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func opts() Options {
	return Options{Table: "t", RetryMin: time.Microsecond, RetryMax: time.Millisecond}
}

// check runs the sim and asserts that exactly its bad items are rejected
// and every other item landed.
func check(t *testing.T, s *sim, n int, o Options) []Rejection[int] {
	t.Helper()
	rej, err := Run(context.Background(), s, items(n), o)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, r := range rej {
		got = append(got, r.Item)
	}
	slices.Sort(got)
	var want []int
	for b := range s.bad {
		if b < n {
			want = append(want, b)
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("rejected %v, want %v", got, want)
	}
	for i := range n {
		if !s.bad[i] && !s.landed[i] {
			t.Fatalf("item %d neither landed nor rejected", i)
		}
	}
	return rej
}

func TestCleanRequestIsOneSend(t *testing.T) {
	s := newSim()
	check(t, s, 500, opts())
	if s.sends != 1 || s.probes != 0 {
		t.Fatalf("%d sends, %d probes", s.sends, s.probes)
	}
}

// TestNamedBadItemsCostOneSendEach: when answers name the bad item, each
// costs one refused request and the rest goes again in full.
func TestNamedBadItemsCostOneSendEach(t *testing.T) {
	s := newSim(3, 250, 499)
	s.named = true
	check(t, s, 500, opts())
	if s.sends != 4 || s.probes != 0 {
		t.Fatalf("%d sends, %d probes; want 4 and 0", s.sends, s.probes)
	}
}

// TestUnnamedBadItemsCostLogOfGoodPerBad bounds the sends for unnamed
// refusals by generalized binary splitting: about d·(log2(n/d)+3) (the
// information bound is log2 C(n,d) ≈ 38 here), where halving both halves
// down to every bad item costs about 2·d·log2(n/d)+… ≈ 80.
func TestUnnamedBadItemsCostLogOfGoodPerBad(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, d = 500, 5
	total, probes := 0, 0
	for range 20 {
		s := newSim()
		for len(s.bad) < d {
			s.bad[rng.IntN(n)] = true
		}
		check(t, s, n, opts())
		total += s.sends + s.probes
		probes += s.probes
	}
	// d·(log2(n/d)+4) ≈ 5·10.6 = 53 per batch.
	t.Logf("%.1f requests (%.1f probes) per batch of %d with %d bad", float64(total)/20, float64(probes)/20, n, d)
	if avg := float64(total) / 20; avg > 55 {
		t.Fatalf("%.1f requests per batch of %d with %d bad, want at most 55", avg, n, d)
	}
}

// TestTableFailingIsWaitedOut: a table that fails as a whole for a while,
// with or without naming itself, costs waits, never a rejection.
func TestTableFailingIsWaitedOut(t *testing.T) {
	reg := prometheus.NewRegistry()
	gauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "g"}, []string{"target", "table"})
	reg.MustRegister(gauge)
	var events []string
	h := NewHealth("x", nil, gauge, func(table string, err error) {
		events = append(events, fmt.Sprintf("%s:%v", table, err))
	})
	o := opts()
	o.Health = h
	s := newSim()
	s.down = 7
	check(t, s, 100, o)
	if want := []string{"t:table not found", "t:<nil>"}; !slices.Equal(events, want) {
		t.Fatalf("hook saw %v, want %v", events, want)
	}
	if v := testutil.ToFloat64(gauge.WithLabelValues("x", "t")); v != 0 {
		t.Fatalf("gauge %v after recovery", v)
	}
}

// TestOutageDuringIsolationRejectsNothingGood: the table fails as a whole
// with an unnamed refusal (no words to tell) while bad items are being
// isolated: only the bad items are rejected.
func TestOutageDuringIsolationRejectsNothingGood(t *testing.T) {
	for after := range 20 {
		for down := range 16 {
			s := newSim(10, 90)
			out := &outage{sim: s, after: after, left: down}
			rej, err := Run(context.Background(), out, items(100), opts())
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rej {
				if !s.bad[r.Item] {
					t.Fatalf("outage of %d answers after %d: good item %d rejected: %s", down, after, r.Item, r.Reason)
				}
			}
			if len(rej) != 2 {
				t.Fatalf("outage of %d answers after %d: rejected %v", down, after, rej)
			}
		}
	}
}

// outage answers like the sim, except that after its first after sends it
// refuses everything, unnamed, and fails probes, for left answers.
type outage struct {
	*sim
	after, left int
}

func (o *outage) Send(ctx context.Context, items []int) (Answer, error) {
	if o.after > 0 {
		o.after--
		return o.sim.Send(ctx, items)
	}
	if o.left > 0 {
		o.left--
		return Answer{Kind: Refused, Reason: "param is invalid"}, nil
	}
	return o.sim.Send(ctx, items)
}

func (o *outage) Probe(ctx context.Context) (Answer, error) {
	if o.left > 0 {
		o.left--
		return Answer{Kind: TableFailing, Reason: "param is invalid"}, nil
	}
	return o.sim.Probe(ctx)
}

// TestLoneBadItemNeedsAProbe: an item refused alone with no sibling to
// show the table healthy is rejected only after a probe succeeds and it is
// refused again.
func TestLoneBadItemNeedsAProbe(t *testing.T) {
	s := newSim(0)
	check(t, s, 1, opts())
	if s.sends != 2 || s.probes != 1 {
		t.Fatalf("%d sends, %d probes; want 2 and 1", s.sends, s.probes)
	}
	s = newSim(0, 1)
	check(t, s, 2, opts())
	if s.probes == 0 {
		t.Fatal("two bad items, no sibling landed, yet no probe")
	}
}

func TestMaxRetriesEndsTheRun(t *testing.T) {
	s := newSim()
	s.down = 100
	o := opts()
	o.MaxRetries = 3
	_, err := Run(context.Background(), s, items(10), o)
	var f *FailingError
	if !errors.As(err, &f) || f.Attempts != 4 || f.Table != "t" {
		t.Fatalf("got %v", err)
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	s := newSim()
	s.down = 1 << 30
	o := opts()
	o.RetryMin, o.RetryMax = 5*time.Millisecond, 5*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Run(ctx, s, items(10), o); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

// Settling a request that landed whole copies nothing: the answer of every
// clean request of the stream goes through it.
func TestSettlingALandedGroupAllocatesNothing(t *testing.T) {
	r := &run[int]{}
	items := make([]int, 500)
	allocs := testing.AllocsPerRun(10, func() {
		if rest := r.settle(items, Answer{Kind: Landed}); len(rest) != len(items) {
			t.Fatalf("%d items undecided, want %d", len(rest), len(items))
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per settle", allocs)
	}
	if r.landed != 11*len(items) {
		t.Fatalf("%d landed, want %d", r.landed, 11*len(items))
	}
}

func BenchmarkSettleLanded(b *testing.B) {
	r := &run[[96]byte]{}
	items := make([][96]byte, 500)
	b.ReportAllocs()
	for b.Loop() {
		r.settle(items, Answer{Kind: Landed})
	}
}
