package gptbots_test

import (
	"testing"
	"time"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/gptbots"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
	"github.com/replicator-cdc/replicator/targets/writertest"
)

var fieldTypes = writertest.Types[string]{
	Int: gptbotsfake.TypeInt, Text: gptbotsfake.TypeText, Float: gptbotsfake.TypeFloat, Bool: gptbotsfake.TypeBoolean,
}

// poisonValue is the text the fake refuses once Poison armed it.
const poisonValue = "refused by the conformance fake"

// TestConformance runs the behaviour every writer shares against the
// GPTBots writer and its fake.
func TestConformance(t *testing.T) {
	writertest.Run(t, conformance{})
}

type conformance struct{}

func (conformance) New(t *testing.T, opts writertest.Options, tables ...string) writertest.Target {
	t.Helper()
	// No rate limit on the fake and a fast-retrying writer: the suite
	// checks what the writer does, not how long it waits.
	fake := gptbotsfake.New(gptbotsfake.Options{APIKey: apiKey, RequestsPerSecond: opts.FakeLimit(), Jitter: opts.Jitter, Seed: 5})
	t.Cleanup(fake.Close)
	fields := writertest.FakeColumns(func(c writertest.Column) gptbotsfake.Field {
		return gptbotsfake.Field{Name: c.Name, Type: fieldTypes.Of(c.Type), Unique: c.Name == "id"}
	})
	writertest.AddTables(t, func(name string) error { return fake.AddTable(name, fields) }, tables...)
	w, err := gptbots.New(gptbots.Config{
		Name: "bots", BaseURL: fake.URL(), APIKey: apiKey, RequestsPerSecond: opts.RequestsPerSecond,
		RequestTimeout: 2 * time.Second, BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond,
		MaxConcurrentRequests: opts.MaxConcurrentRequests, MaxItems: opts.MaxBatchRows,
	}, gptbots.Deps{HTTPClient: opts.HTTPClient})
	if err != nil {
		t.Fatal(err)
	}
	return &gptbotsTarget{Adapter: writertest.NewAdapter(w, fake, gptbotsfake.FaultServerError, gptbotsfake.FaultDrop,
		gptbotsfake.FaultLostAnswer, gptbotsfake.FaultThrottle, gptbotsfake.FaultThrottleLate), fake: fake}
}

type gptbotsTarget struct {
	writertest.Adapter[gptbotsfake.Fault]
	fake *gptbotsfake.Server
}

// MaxBatchRows is the writer's default, the API's limit on update items.
func (g *gptbotsTarget) MaxBatchRows() int { return gptbots.DefaultMaxItems }

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
