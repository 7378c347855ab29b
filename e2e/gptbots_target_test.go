package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

const (
	gbTableID = "tbl_gb_items"
	gbAPIKey  = "gb-e2e-api-key-0042"
	// gbKeyVar carries the API key into the configuration, the way the
	// documentation tells users to keep secrets.
	gbKeyVar = "E2E_GPTBOTS_API_KEY"
	// gbZone is where DATETIME fields are written; not UTC, so that a
	// writer ignoring the setting is caught, and with DST in 1986-1991.
	gbZone         = "Asia/Shanghai"
	gbRejectReason = "name refused by the e2e fake"
)

// gbFields is the GPTBots table: every field type, the key unique.
var gbFields = []gptbotsfake.Field{
	{Name: "id", Type: gptbotsfake.TypeInt, Unique: true},
	{Name: "name", Type: gptbotsfake.TypeText},
	{Name: "qty", Type: gptbotsfake.TypeInt},
	{Name: "price", Type: gptbotsfake.TypeFloat},
	{Name: "ratio", Type: gptbotsfake.TypeFloat},
	{Name: "flag", Type: gptbotsfake.TypeBoolean},
	{Name: "at", Type: gptbotsfake.TypeDateTime},
	{Name: "doc", Type: gptbotsfake.TypeText},
	{Name: "tags", Type: gptbotsfake.TypeText},
	{Name: "big", Type: gptbotsfake.TypeText},
}

func gptbotsTarget() target {
	return target{
		name: "gptbots",
		zone: "America/Sao_Paulo",
		columns: columns{kinds: map[string]colKind{
			"id": kindExact, "name": kindExact, "qty": kindExact, "price": kindNumeric, "ratio": kindFloat,
			"flag": kindExact, "at": kindWallTime, "doc": kindJSONText, "tags": kindJSONText, "big": kindExact,
		}, zone: mustLoadLocation(gbZone)},
		faultRate: 0.12,
		shutdown:  30 * time.Second,
		start:     startGPTBots,
	}
}

func mustLoadLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// gbFake is a fake GPTBots holding the items table behind a loopback
// proxy that records the records the fake refuses.
type gbFake struct {
	*gptbotsfake.Server
	refusals *gbRecorder
	proxyURL string
}

// startGPTBots starts the fake without a rate limit of its own (the
// writer keeps its configured one); it refuses every name starting with
// poisonPrefix, and answers slow past the writer's 5s request timeout.
func startGPTBots(t *testing.T, seed uint64) fake {
	t.Helper()
	s := gptbotsfake.New(gptbotsfake.Options{APIKey: gbAPIKey, RequestsPerSecond: -1, RetryAfter: 1, SlowDelay: 8 * time.Second, Seed: seed})
	t.Cleanup(s.Close)
	require.NoError(t, s.AddTable(gbTableID, gbFields))
	s.SetReject(func(_, field string, v any) string {
		if s, ok := v.(string); ok && field == "name" && strings.HasPrefix(s, poisonPrefix) {
			return gbRejectReason
		}
		return ""
	})
	refusals, proxyURL := gbStartRecorder(t, s.URL())
	return &gbFake{Server: s, refusals: refusals, proxyURL: proxyURL}
}

func (f *gbFake) yaml() string {
	return fmt.Sprintf(`targets:
  bots:
    type: gptbots
    base_url: %s
    api_key: ${%s}
    requests_per_second: 50
    request_timeout: 5s
    timezone: %s
mappings:
  - source: public.items
    target: bots
    table: %s
`, f.proxyURL, gbKeyVar, gbZone, gbTableID)
}

func (f *gbFake) secret() (string, string) { return gbKeyVar, gbAPIKey }

// rows: a field not set is NULL.
func (f *gbFake) rows() []map[string]any {
	rows := f.Rows(gbTableID)
	for _, r := range rows {
		for _, field := range gbFields {
			if _, set := r[field.Name]; !set {
				r[field.Name] = nil
			}
		}
	}
	return rows
}

// faults: about 5xx, 502 from a proxy, dropped connections, throttling,
// and answers lost after the change was applied.
func (f *gbFake) faults(p float64) {
	f.SetFaultRate(p, gptbotsfake.FaultServerError, gptbotsfake.FaultBadGateway, gptbotsfake.FaultDrop,
		gptbotsfake.FaultLostAnswer, gptbotsfake.FaultLostAnswer, gptbotsfake.FaultThrottle)
}

var gbFaultKinds = []gptbotsfake.Fault{gptbotsfake.FaultServerError, gptbotsfake.FaultBadGateway, gptbotsfake.FaultDrop,
	gptbotsfake.FaultLostAnswer, gptbotsfake.FaultThrottle}

func (f *gbFake) injectEach() { f.InjectFaults(gbFaultKinds...) }

func (f *gbFake) down() { f.SetFaultRate(1, gptbotsfake.FaultServerError, gptbotsfake.FaultSlow) }

func (f *gbFake) writeFaults() map[string]int {
	out := map[string]int{}
	for _, r := range f.Requests() {
		if r.Path == gptbotsfake.UpdatePath || r.Path == gptbotsfake.DeletePath {
			out[r.Fault.String()]++
		}
	}
	return out
}

func (f *gbFake) faultKinds() []string {
	var out []string
	for _, k := range gbFaultKinds {
		out = append(out, k.String())
	}
	return out
}

func (f *gbFake) refuses() bool { return true }

func (f *gbFake) checkRequests(*testing.T) string {
	return fmt.Sprintf("%d calls", len(f.Requests()))
}

// checkDeadLetters: every record the fake refused, and only those, is a
// dead letter, and every source row whose name the fake refuses has its
// dead letter.
func (f *gbFake) checkDeadLetters(t *testing.T, stateDir string, src map[string]map[string]any) {
	t.Helper()
	refused, unexpected := f.refusals.snapshot()
	require.Empty(t, unexpected, "the fake refused items for another reason than the poisoned name")
	letters := gbDeadLetters(t, stateDir)
	gbRequireSameSet(t, refused, letters)
	for id, row := range src {
		if name, _ := row["name"].(string); strings.HasPrefix(name, poisonPrefix) {
			require.Contains(t, letters, gbRefusal{id, name}, "row %s holds a refused name but has no dead letter", id)
		}
	}
}

// gbRefusal is one record the fake refused: its key and refused name.
type gbRefusal struct{ id, name string }

// gbRecorder notes every item the fake's update answers list as failed,
// from the answers themselves, so that "the rows the fake rejected" is
// what the fake said, not what the daemon understood.
type gbRecorder struct {
	mu         sync.Mutex
	refused    map[gbRefusal]bool
	unexpected []string
}

// gbStartRecorder starts a loopback proxy to the fake that records
// refusals. When the fake hangs up (a dropped connection, a lost answer),
// the proxy hangs up on the daemon too, so that the daemon meets the
// fault the fake injected.
func gbStartRecorder(t *testing.T, upstream string) (*gbRecorder, string) {
	t.Helper()
	rec := &gbRecorder{refused: map[gbRefusal]bool{}}
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(client.CloseIdleConnections)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		req.Header = r.Header.Clone()
		resp, err := client.Do(req)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		defer resp.Body.Close()
		answer, err := io.ReadAll(resp.Body)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		if r.URL.Path == gptbotsfake.UpdatePath && resp.StatusCode == http.StatusOK {
			rec.note(answer)
		}
		maps.Copy(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(answer)
	}))
	t.Cleanup(srv.Close)
	return rec, srv.URL
}

func (g *gbRecorder) note(answer []byte) {
	var ans gptbotsfake.UpdateAnswer
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := json.Unmarshal(answer, &ans); err != nil {
		g.unexpected = append(g.unexpected, fmt.Sprintf("unreadable update answer %q: %v", answer, err))
		return
	}
	for _, d := range ans.FailDetail {
		var filter map[string]json.Number
		var value map[string]any
		errF := gbUnmarshal(d.UpsertData.Filter, &filter)
		errV := gbUnmarshal(d.UpsertData.Value, &value)
		name, _ := value["name"].(string)
		if errF != nil || errV != nil || filter["id"] == "" || d.FailReason != gbRejectReason || !strings.HasPrefix(name, poisonPrefix) {
			g.unexpected = append(g.unexpected, fmt.Sprintf("filter %s value %.200s: %s", d.UpsertData.Filter, d.UpsertData.Value, d.FailReason))
			continue
		}
		g.refused[gbRefusal{filter["id"].String(), name}] = true
	}
}

func (g *gbRecorder) snapshot() (map[gbRefusal]bool, []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.refused), slices.Clone(g.unexpected)
}

// gbDeadLetters reads the dead letters into refusals, checking each
// letter's fields on the way.
func gbDeadLetters(t *testing.T, stateDir string) map[gbRefusal]bool {
	t.Helper()
	out := map[gbRefusal]bool{}
	for i, dl := range deadLetters(t, stateDir) {
		var id, rowID json.Number
		var name string
		require.NoError(t, gbUnmarshal(dl.Key["id"], &id), "dead letter %d key: %+v", i+1, dl)
		require.NoError(t, gbUnmarshal(dl.Row["id"], &rowID), "dead letter %d row id: %+v", i+1, dl)
		require.NoError(t, gbUnmarshal(dl.Row["name"], &name), "dead letter %d row name: %+v", i+1, dl)
		require.Equal(t, "bots", dl.Target, "dead letter %d", i+1)
		require.Equal(t, gbTableID, dl.Table, "dead letter %d", i+1)
		require.Equal(t, "public.items", dl.Source, "dead letter %d", i+1)
		require.Equal(t, "upsert", dl.Op, "dead letter %d", i+1)
		require.Equal(t, id, rowID, "dead letter %d: key and row disagree", i+1)
		require.Contains(t, dl.Error, gbRejectReason, "dead letter %d", i+1)
		require.NotEmpty(t, dl.LSN, "dead letter %d", i+1)
		out[gbRefusal{id.String(), name}] = true
	}
	return out
}

// gbRequireSameSet fails with the differences when the fake's refusals
// and the dead letters are not the same records.
func gbRequireSameSet(t *testing.T, refused, letters map[gbRefusal]bool) {
	t.Helper()
	var onlyRefused, onlyLetters []string
	for r := range refused {
		if !letters[r] {
			onlyRefused = append(onlyRefused, fmt.Sprintf("%s %q", r.id, r.name))
		}
	}
	for r := range letters {
		if !refused[r] {
			onlyLetters = append(onlyLetters, fmt.Sprintf("%s %q", r.id, r.name))
		}
	}
	slices.Sort(onlyRefused)
	slices.Sort(onlyLetters)
	if len(onlyRefused)+len(onlyLetters) > 0 {
		t.Fatalf("the fake refused %d records and the dead-letter file holds %d;\n  refused but no dead letter: %v\n  dead letter the fake never refused: %v",
			len(refused), len(letters), onlyRefused, onlyLetters)
	}
}

// gbUnmarshal decodes one JSON value, keeping numbers exact.
func gbUnmarshal(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	return d.Decode(v)
}
