package gptbots_test

import (
	"strings"
	"testing"
	"time"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/gptbots"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

func TestNewValidatesConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  gptbots.Config
		want string
	}{
		{"no key", gptbots.Config{Name: "b"}, "api_key"},
		{"bad zone", gptbots.Config{Name: "b", APIKey: apiKey, Timezone: "Mars/Olympus"}, "timezone"},
		{"bad url", gptbots.Config{Name: "b", APIKey: apiKey, BaseURL: "ftp://x"}, "base_url"},
		{"negative rate", gptbots.Config{Name: "b", APIKey: apiKey, RequestsPerSecond: -1}, "requests_per_second"},
		{"backoff", gptbots.Config{Name: "b", APIKey: apiKey, BackoffMin: time.Second, BackoffMax: time.Millisecond}, "backoff_max"},
	} {
		_, err := gptbots.New(tc.cfg, gptbots.Deps{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), apiKey) {
			t.Errorf("%s: got %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
	if _, err := gptbots.New(gptbots.Config{Name: "b", APIKey: apiKey}, gptbots.Deps{}); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestPrepareRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spec  func(replicator.TableSpec) replicator.TableSpec
		fake  func(*gptbotsfake.Server)
		wants []string
	}{
		{"composite key", func(s replicator.TableSpec) replicator.TableSpec { s.Key = []string{"id", "email"}; return s }, nil,
			[]string{table, "exactly one"}},
		{"missing column", func(s replicator.TableSpec) replicator.TableSpec { s.Columns = append(s.Columns, "phone"); return s }, nil,
			[]string{table, `"phone"`, "does not exist"}},
		{"key not unique", func(s replicator.TableSpec) replicator.TableSpec { s.Key = []string{"name"}; return s }, nil,
			[]string{table, `"name"`, "not unique"}},
		{"table not found", func(s replicator.TableSpec) replicator.TableSpec { s.Table = "nope"; return s }, nil,
			[]string{"nope", "403106", "table id"}},
		{"no access", nil, func(f *gptbotsfake.Server) { f.SetAccess(table, false) },
			[]string{table, "403131", "permission"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			s := spec
			if tc.spec != nil {
				s = tc.spec(spec)
			}
			if tc.fake != nil {
				tc.fake(h.fake)
			}
			err := h.w.Prepare(ctx(t), []replicator.TableSpec{s})
			if err == nil {
				t.Fatal("Prepare accepted")
			}
			for _, want := range tc.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if n := len(h.fake.Requests()); n > 1 {
				t.Errorf("%d calls; a refusal must not be retried", n)
			}
			h.checkNoSecret(t, err)
		})
	}
}

func TestPrepareReadsBothPageShapes(t *testing.T) {
	for _, wrap := range []bool{false, true} {
		h := newHarness(t, func(o *gptbotsfake.Options, _ *gptbots.Config) { o.WrapPage = wrap })
		h.prepare(t)
		if rej := h.write(t, upsert("1", field("n", val(replicator.KindInt, "5")))); len(rej) != 0 {
			t.Fatalf("wrap %v: %v", wrap, rej)
		}
	}
}

func TestWrongKeyIsFatal(t *testing.T) {
	h := newHarness(t, func(o *gptbotsfake.Options, _ *gptbots.Config) { o.APIKey = "another-key" })
	err := h.w.Prepare(ctx(t), []replicator.TableSpec{spec})
	if err == nil || !strings.Contains(err.Error(), "API key rejected") {
		t.Fatalf("got %v", err)
	}
	if n := len(h.fake.Requests()); n != 1 {
		t.Errorf("%d calls; a rejected key must not be retried", n)
	}
	h.checkNoSecret(t, err)
}

// TestWriteGivesUpOnTableErrors: a table that goes missing or refused
// while running is waited for, never rejected; with max_retries the write
// ends in an error that says what to check.
func TestWriteGivesUpOnTableErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(*gptbotsfake.Server)
		wants  []string
	}{
		{"no access", func(f *gptbotsfake.Server) { f.SetAccess(table, false) }, []string{table, "403131", "permission"}},
		{"table gone", func(f *gptbotsfake.Server) { f.DropTable(table) }, []string{table, "403106", "table id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(_ *gptbotsfake.Options, c *gptbots.Config) { c.MaxRetries = 2 })
			h.prepare(t)
			tc.break_(h.fake)
			rej, err := h.w.Write(ctx(t), replicator.Batch{Table: spec, Records: []replicator.Record{upsert("1"), remove("2")}})
			if err == nil || len(rej) != 0 {
				t.Fatalf("Write: %v, rejected %v", err, rej)
			}
			for _, want := range tc.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if n := h.errorsCounted("table"); n < 3 {
				t.Errorf("%v table errors counted, want 3", n)
			}
			h.checkNoSecret(t, err)
		})
	}
}

func TestWriteUnpreparedTable(t *testing.T) {
	h := newHarness(t, nil)
	if _, err := h.w.Write(ctx(t), replicator.Batch{Table: spec, Records: []replicator.Record{upsert("1")}}); err == nil || !strings.Contains(err.Error(), "not prepared") {
		t.Fatalf("got %v", err)
	}
}
