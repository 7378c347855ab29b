package testkit

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLockedBufferConcurrentWrites: writers on several goroutines and a
// reader at the same time lose nothing (and -race sees no race).
func TestLockedBufferConcurrentWrites(t *testing.T) {
	var b LockedBuffer
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				fmt.Fprintf(&b, "%d-%d\n", i, j)
			}
		}()
	}
	for range 10 {
		_ = b.String()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 400 {
		t.Fatalf("%d lines, want 400", n)
	}
}

// fatalRecorder notes a Fatalf instead of ending the goroutine.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }

func TestEventually(t *testing.T) {
	calls := 0
	Eventually(t, time.Minute, "the third call", func() bool { calls++; return calls == 3 })
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3", calls)
	}

	rec := &fatalRecorder{TB: t}
	Eventually(rec, 0, "never", func() bool { return rec.msg != "" })
	if !strings.Contains(rec.msg, "waiting for never") {
		t.Fatalf("failure %q does not name what was awaited", rec.msg)
	}
}

func TestTail(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"short", "short"},
		{"line one\nline two\nline three", "…\nline three"},
	} {
		if got := Tail(c.in, 12); got != c.want {
			t.Errorf("Tail(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestHealthEvents(t *testing.T) {
	var h HealthEvents
	h.Hook("customers", fmt.Errorf("table gone"))
	h.Hook("customers", nil)
	got := h.Events()
	if want := []string{"customers:failing", "customers:ok"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", got, want)
	}
}
