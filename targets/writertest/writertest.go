// Package writertest is one conformance suite for every replicator.Writer:
// the behaviour the pipeline relies on whatever the target, run the same
// way against each target's fake, so that the writers cannot drift apart.
// What only one API has (its encodings, request shapes, auth, limits) stays
// in that writer's own tests.
//
// A target package runs the suite from its tests with a Harness that wires
// its writer to a fresh fake:
//
//	func TestConformance(t *testing.T) { writertest.Run(t, harness{}) }
package writertest

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/replicator-cdc/replicator"
)

// Fault is a failure a harness makes its fake inject into write requests.
// Every fake can inject these four; each harness maps them to its own.
type Fault int

const (
	// FaultServerError answers a 5xx without applying anything.
	FaultServerError Fault = iota + 1
	// FaultDrop closes the connection without applying or answering.
	FaultDrop
	// FaultLostAnswer applies the request, then closes the connection
	// without answering.
	FaultLostAnswer
	// FaultThrottle answers that the client is over the rate limit.
	FaultThrottle
	// FaultThrottleLate answers like FaultThrottle, but only right after
	// the next request arrived, so that no request the client sent before
	// it knew can arrive after the answer. Not in Faults: without a next
	// request it waits long.
	FaultThrottleLate
)

// Faults lists every Fault.
var Faults = []Fault{FaultServerError, FaultDrop, FaultLostAnswer, FaultThrottle}

func (f Fault) String() string {
	switch f {
	case FaultServerError:
		return "server_error"
	case FaultDrop:
		return "drop"
	case FaultLostAnswer:
		return "lost_answer"
	case FaultThrottle:
		return "throttle"
	case FaultThrottleLate:
		return "throttle_late"
	}
	return "fault(" + strconv.Itoa(int(f)) + ")"
}

// Type is the type of a table column, as the suite compares its values.
type Type int

const (
	// TypeInt is a 64-bit integer column (Feishu bigint, GPTBots INT).
	TypeInt Type = iota + 1
	// TypeText is a text column.
	TypeText
	// TypeFloat is a double precision column (GPTBots FLOAT).
	TypeFloat
	// TypeBool is a boolean column.
	TypeBool
)

// Column is one column of the suite's tables.
type Column struct {
	Name string
	Type Type
}

// Columns is the schema of every table the suite writes to. The key is
// the single column "id", which the harness must declare unique so that
// the writer can upsert on it; the other columns accept NULL.
var Columns = []Column{
	{Name: "id", Type: TypeInt},
	{Name: "name", Type: TypeText},
	{Name: "score", Type: TypeFloat},
	{Name: "flag", Type: TypeBool},
}

// Options is what a case needs of the writer beyond the harness's fast
// defaults.
type Options struct {
	// HTTPClient is the client the writer must send every request with;
	// the suite sets it, to count the requests in flight.
	HTTPClient *http.Client
	// RequestsPerSecond is the writer's own rate limit; the suite sets
	// it, high unless the case names one.
	RequestsPerSecond float64
	// RateLimit makes the fake enforce, like the real API, at most this
	// many requests in any sliding second; 0 leaves the fake unlimited
	// (see FakeLimit).
	RateLimit int
	// MaxConcurrentRequests is the writer's bound on requests in flight;
	// 0 leaves the writer's default.
	MaxConcurrentRequests int
	// MaxBatchRows is the most upserts the writer puts in one request; 0
	// leaves the writer's default, the one Target.MaxBatchRows reports.
	MaxBatchRows int
	// Jitter makes the fake delay each write by a random part of up to
	// this long, so that concurrent requests overlap; 0 for none.
	Jitter time.Duration
}

// Quota is what the fake saw of the rate limit, counted from the arrival
// times of the requests it limits.
type Quota struct {
	// MaxPerSecond is the most requests that arrived in any sliding second.
	MaxPerSecond int
	// Early counts requests that arrived after a throttling answer and
	// before the reset it named.
	Early int
	// Throttles counts throttling answers.
	Throttles int
}

// Harness connects the suite to one writer implementation.
type Harness interface {
	// New starts a fresh fake holding the named tables, each with
	// Columns, and returns a writer wired to it, not yet prepared, that
	// sends with opts.HTTPClient and keeps to opts. The fake must not
	// rate-limit unless opts say so, and the writer should retry fast (a
	// millisecond or so), so that the suite runs in seconds; the harness
	// stops both when t ends. Adapter holds what every Target shares.
	New(t *testing.T, opts Options, tables ...string) Target
}

// Target is one writer and the fake behind it.
type Target interface {
	// Writer is the writer under test.
	Writer() replicator.Writer
	// MaxBatchRows is the most upserts the writer puts in one request by
	// default.
	MaxBatchRows() int
	// Rows returns the fake's rows of a table as stored, one map per row
	// from column name to value: nil, bool, string, json.Number, int64 or
	// float64. Columns not in Columns (system columns) are ignored, and
	// a missing column counts as NULL.
	Rows(table string) []map[string]any
	// InjectFaults queues faults for the next write requests, one each.
	InjectFaults(faults ...Fault)
	// SetFaultRate makes every write request fail with probability p, by
	// a fault drawn from faults; p = 0 turns it off.
	SetFaultRate(p float64, faults ...Fault)
	// Poison makes the fake refuse for good any record carrying the
	// returned field, as the API refuses a value its column cannot hold,
	// and returns that field. It must name a column of Columns other
	// than id.
	Poison(t *testing.T) replicator.Field
	// WriteRequests counts the write requests (upserts and deletes) the
	// fake received, failed ones included.
	WriteRequests() int
	// Quota reports the fake's count of the requests it rate-limits.
	Quota() Quota
}

// Row is a row in the suite's common form: column name to int64, float64,
// bool or string. A NULL column is absent.
type Row map[string]any

// normalize turns a fake's rows into the common form keyed by id, and
// reports rows it cannot read and ids held twice.
func normalize(raw []map[string]any) (map[int64]Row, error) {
	out := make(map[int64]Row, len(raw))
	for i, r := range raw {
		row := Row{}
		for _, c := range Columns {
			v, err := normalizeValue(c.Type, r[c.Name])
			if err != nil {
				return nil, fmt.Errorf("row %d: column %s: %w", i, c.Name, err)
			}
			if v != nil {
				row[c.Name] = v
			}
		}
		id, ok := row["id"].(int64)
		if !ok {
			return nil, fmt.Errorf("row %d has no id: %v", i, r)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("two rows have id %d", id)
		}
		out[id] = row
	}
	return out, nil
}

func normalizeValue(typ Type, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case TypeInt:
		switch x := v.(type) {
		case int64:
			return x, nil
		case json.Number:
			return strconv.ParseInt(x.String(), 10, 64)
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
				return int64(x), nil
			}
		}
	case TypeFloat:
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		case json.Number:
			return strconv.ParseFloat(x.String(), 64)
		}
	case TypeBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case TypeText:
		if s, ok := v.(string); ok {
			return s, nil
		}
	}
	return nil, fmt.Errorf("unexpected %T %v", v, v)
}

// valueOf is the common form of a record's value, as the model stores it;
// nil for NULL.
func valueOf(v replicator.Value) any {
	raw := string(v.Raw)
	switch v.Kind {
	case replicator.KindNull:
		return nil
	case replicator.KindInt:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			panic("writertest: bad int " + raw)
		}
		return n
	case replicator.KindFloat:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			panic("writertest: bad float " + raw)
		}
		return f
	case replicator.KindBool:
		return raw == "true"
	}
	return raw
}

// model is what a table must hold after the records written so far.
type model map[int64]Row

// apply records the effect of a batch's confirmed records: an upsert sets
// the fields it carries (NULL clears) and leaves the others, a delete
// removes the row.
func (m model) apply(recs []replicator.Record) {
	for _, r := range recs {
		id := valueOf(r.Key[0].Value).(int64)
		if r.Op == replicator.OpDelete {
			delete(m, id)
			continue
		}
		row := m[id]
		if row == nil {
			row = Row{}
			m[id] = row
		}
		for _, f := range r.Fields {
			if v := valueOf(f.Value); v != nil {
				row[f.Name] = v
			} else {
				delete(row, f.Name)
			}
		}
	}
}
