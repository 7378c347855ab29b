package gptbots_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/gptbots"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
	"github.com/replicator-cdc/replicator/targets/writertest"
)

// TestConformance runs the behaviour every writer shares against the
// GPTBots writer and its fake.
func TestConformance(t *testing.T) {
	writertest.Run(t, conformance{})
}

type conformance struct{}

var _ writertest.Harness = conformance{}

var fieldTypes = map[writertest.Type]string{
	writertest.TypeInt:   gptbotsfake.TypeInt,
	writertest.TypeText:  gptbotsfake.TypeText,
	writertest.TypeFloat: gptbotsfake.TypeFloat,
	writertest.TypeBool:  gptbotsfake.TypeBoolean,
}

// poisonValue is the text the fake refuses once Poison armed it.
const poisonValue = "refused by the conformance fake"

func (conformance) New(t *testing.T, opts writertest.Options, tables ...string) writertest.Target {
	t.Helper()
	// No rate limit on the fake and a fast-retrying writer: the suite
	// checks what the writer does, not how long it waits.
	limit := -1
	if opts.RateLimit > 0 {
		limit = opts.RateLimit
	}
	fake := gptbotsfake.New(gptbotsfake.Options{APIKey: apiKey, RequestsPerSecond: limit, Seed: 5})
	t.Cleanup(fake.Close)
	fields := make([]gptbotsfake.Field, len(writertest.Columns))
	for i, c := range writertest.Columns {
		fields[i] = gptbotsfake.Field{Name: c.Name, Type: fieldTypes[c.Type], Unique: c.Name == "id"}
	}
	for _, name := range tables {
		if err := fake.AddTable(name, fields); err != nil {
			t.Fatal(err)
		}
	}
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(client.CloseIdleConnections)
	rate := opts.RequestsPerSecond
	if rate == 0 {
		rate = 1000
	}
	w, err := gptbots.New(gptbots.Config{
		Name: "bots", BaseURL: fake.URL(), APIKey: apiKey, RequestsPerSecond: rate,
		RequestTimeout: 2 * time.Second, BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond,
	}, gptbots.Deps{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	return &gptbotsTarget{fake: fake, w: w}
}

type gptbotsTarget struct {
	fake *gptbotsfake.Server
	w    *gptbots.Writer
}

func (g *gptbotsTarget) Writer() replicator.Writer { return g.w }

// MaxBatchRows is the writer's default, the API's limit on update items.
func (g *gptbotsTarget) MaxBatchRows() int { return gptbots.DefaultMaxItems }

// Rows returns the stored values; the fake leaves out fields that are not
// set, which the suite reads as NULL.
func (g *gptbotsTarget) Rows(table string) []map[string]any { return g.fake.Rows(table) }

var gptbotsFaults = map[writertest.Fault]gptbotsfake.Fault{
	writertest.FaultServerError:  gptbotsfake.FaultServerError,
	writertest.FaultDrop:         gptbotsfake.FaultDrop,
	writertest.FaultLostAnswer:   gptbotsfake.FaultLostAnswer,
	writertest.FaultThrottle:     gptbotsfake.FaultThrottle,
	writertest.FaultThrottleLate: gptbotsfake.FaultThrottleLate,
}

func mapFaults(faults []writertest.Fault) []gptbotsfake.Fault {
	out := make([]gptbotsfake.Fault, len(faults))
	for i, f := range faults {
		out[i] = gptbotsFaults[f]
	}
	return out
}

func (g *gptbotsTarget) InjectFaults(faults ...writertest.Fault) {
	g.fake.InjectFaults(mapFaults(faults)...)
}

func (g *gptbotsTarget) SetFaultRate(p float64, faults ...writertest.Fault) {
	g.fake.SetFaultRate(p, mapFaults(faults)...)
}

// Poison arms the fake to fail any item whose name is poisonValue, the
// way the API lists an item it refuses in fail_detail.
func (g *gptbotsTarget) Poison(*testing.T) replicator.Field {
	g.fake.SetReject(func(_, field string, v any) string {
		if field == "name" && v == poisonValue {
			return "value refused"
		}
		return ""
	})
	return replicator.Field{Name: "name", Value: replicator.Value{Kind: replicator.KindText, Raw: []byte(poisonValue)}}
}

func (g *gptbotsTarget) WriteRequests() int {
	n := 0
	for _, r := range g.fake.Requests() {
		if r.Path == gptbotsfake.UpdatePath || r.Path == gptbotsfake.DeletePath {
			n++
		}
	}
	return n
}

// Quota counts every call: the fake rate-limits them all.
func (g *gptbotsTarget) Quota() writertest.Quota {
	calls := g.fake.Requests()
	q := writertest.Quota{MaxPerSecond: gptbotsfake.MaxPerWindow(calls, time.Second), Early: len(gptbotsfake.EarlyAfterThrottle(calls))}
	for _, r := range calls {
		q.Throttles += min(1, int(r.Reset))
	}
	return q
}
