package feishufake

import (
	"net/http"
	"slices"
)

// Change is one row change as the fake applied it, in the order it applied
// them (Options.History).
type Change struct {
	// Op is "upsert" or "delete".
	Op string
	// Row is the upsert's object as sent, or the deleted row.
	Row map[string]any
}

// History returns the changes applied to a table so far, when
// Options.History is set.
func (s *Server) History(table string) []Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.history[table])
}

// remember logs applied changes under s.mu.
func (s *Server) remember(table, op string, rows []map[string]any) {
	if !s.opts.History {
		return
	}
	if s.history == nil {
		s.history = make(map[string][]Change)
	}
	for _, r := range rows {
		s.history[table] = append(s.history[table], Change{Op: op, Row: r})
	}
}

// delay holds a record write for Options.Latency plus a random share of
// Options.Jitter before the fake applies it, as the real API's statement
// behind its gateway takes hundreds of milliseconds; requests sent in one
// order may so be applied in another. It reports whether the client is
// still there.
func (s *Server) delay(r *http.Request) bool {
	d := s.faults.Delay(s.opts.Latency, s.opts.Jitter)
	if d <= 0 {
		return true
	}
	return s.srv.Sleep(r.Context(), d)
}
