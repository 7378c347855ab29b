package httpapi

import (
	"strings"
	"testing"
)

// An online resync of a table fanned out to two targets shows on the
// status page on both mappings' rows, with its rows, estimate and chunk.
func TestStatusPageOnlineResync(t *testing.T) {
	s, m := newTestServer(t, Options{})
	m.AddTable("public.people", "feishu", "people")
	m.AddTable("public.people", "gptbots", "t_people")
	m.Phase("streaming")
	m.ResyncProgress("public.people", 1000, 4000, 2, false)

	_, body := get(t, s, "/")
	want := `<progress max="1" value="0.25"></progress><small>25% · online resync: 1,000 / ~4,000, chunk 2</small>`
	if n := strings.Count(body, want); n != 2 {
		t.Errorf("status page shows %q %d times, want once per mapping", want, n)
	}
	for _, row := range []string{`feishu/people`, `gptbots/t_people`} {
		if !strings.Contains(body, row) {
			t.Errorf("status page lacks the mapping %q", row)
		}
	}
}
