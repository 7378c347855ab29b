package writertest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/replicator-cdc/replicator"
)

// Fake is what an Adapter uses of a fake whose fault type is F.
type Fake[F any] interface {
	Rows(table string) []map[string]any
	InjectFaults(faults ...F)
	SetFaultRate(p float64, faults ...F)
}

// Adapter is the part of a Target that is alike for every writer: the
// writer, and its fake's rows and faults. A harness embeds it in its Target
// and adds what differs.
type Adapter[F fmt.Stringer] struct {
	w       replicator.Writer
	fake    Fake[F]
	byFault map[Fault]F
}

// NewAdapter matches each suite Fault to the one of faults with the same
// name (the fakes name theirs as Fault.String does); it panics when the
// fake lacks one, since a case would then inject the wrong failure.
func NewAdapter[F fmt.Stringer](w replicator.Writer, fake Fake[F], faults ...F) Adapter[F] {
	byName := make(map[string]F, len(faults))
	for _, f := range faults {
		byName[f.String()] = f
	}
	byFault := make(map[Fault]F)
	for _, f := range append(slices.Clone(Faults), FaultThrottleLate) {
		ff, ok := byName[f.String()]
		if !ok {
			panic("writertest: the fake's faults lack " + f.String())
		}
		byFault[f] = ff
	}
	return Adapter[F]{w: w, fake: fake, byFault: byFault}
}

// Writer implements Target.
func (a Adapter[F]) Writer() replicator.Writer { return a.w }

// Rows implements Target.
func (a Adapter[F]) Rows(table string) []map[string]any { return a.fake.Rows(table) }

func (a Adapter[F]) mapped(faults []Fault) []F {
	out := make([]F, len(faults))
	for i, f := range faults {
		out[i] = a.byFault[f]
	}
	return out
}

// InjectFaults implements Target.
func (a Adapter[F]) InjectFaults(faults ...Fault) { a.fake.InjectFaults(a.mapped(faults)...) }

// SetFaultRate implements Target.
func (a Adapter[F]) SetFaultRate(p float64, faults ...Fault) {
	a.fake.SetFaultRate(p, a.mapped(faults)...)
}

// Types names a fake's column type for each suite Type.
type Types[T any] struct{ Int, Text, Float, Bool T }

// Of is the fake's type for t.
func (ts Types[T]) Of(t Type) T {
	switch t {
	case TypeInt:
		return ts.Int
	case TypeText:
		return ts.Text
	case TypeFloat:
		return ts.Float
	case TypeBool:
		return ts.Bool
	}
	panic("writertest: unknown type " + strconv.Itoa(int(t)))
}

// FakeColumns is Columns as a fake describes them, by column.
func FakeColumns[C any](column func(Column) C) []C {
	out := make([]C, len(Columns))
	for i, c := range Columns {
		out[i] = column(c)
	}
	return out
}

// FakeLimit is the fake's requests per second for RateLimit: the fakes
// read -1 as no limit.
func (o Options) FakeLimit() int {
	if o.RateLimit > 0 {
		return o.RateLimit
	}
	return -1
}

// AddTables adds each of tables to a fake through add, failing t on error.
func AddTables(t *testing.T, add func(table string) error, tables ...string) {
	t.Helper()
	for _, name := range tables {
		if err := add(name); err != nil {
			t.Fatal(err)
		}
	}
}

// inFlight is the transport of the suite's HTTP client: it records the
// most requests in flight at once.
type inFlight struct {
	rt       *http.Transport
	now, max atomic.Int64
}

func (c *inFlight) RoundTrip(r *http.Request) (*http.Response, error) {
	n := c.now.Add(1)
	defer c.now.Add(-1)
	for m := c.max.Load(); n > m && !c.max.CompareAndSwap(m, n); m = c.max.Load() {
	}
	return c.rt.RoundTrip(r)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport.
func (c *inFlight) CloseIdleConnections() { c.rt.CloseIdleConnections() }

// newTarget calls the harness with the suite's HTTP client and a high rate
// unless opts name one.
func newTarget(t *testing.T, h Harness, opts Options, tables ...string) (Target, *inFlight) {
	t.Helper()
	flight := &inFlight{rt: http.DefaultTransport.(*http.Transport).Clone()}
	opts.HTTPClient = &http.Client{Transport: flight}
	t.Cleanup(opts.HTTPClient.CloseIdleConnections)
	if opts.RequestsPerSecond == 0 {
		opts.RequestsPerSecond = 1000
	}
	return h.New(t, opts, tables...), flight
}
