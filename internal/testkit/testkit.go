// Package testkit holds the test helpers that tests of several packages
// share, so that each exists once.
package testkit

import (
	"bytes"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// LockedBuffer collects output written from several goroutines (a logger's
// handler) while a test reads it.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// pollEvery is how often Eventually looks again: often enough that a test
// waits little past the moment, rarely enough to leave the machine to the
// code under test.
const pollEvery = 100 * time.Millisecond

// Eventually waits until cond holds, failing t when it does not within
// timeout; what names the awaited state in the failure. cond may itself
// fail t (when what it waits for can no longer happen).
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(pollEvery)
	}
}

// Tail keeps the end of a log, where the reason for a failure is, cut at
// a line start.
func Tail(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	s = s[len(s)-limit:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "…\n" + s
}

// HealthEvents records what a writer's TableHealth hook is told, as
// "table:failing" or "table:ok", from the writer's goroutines.
type HealthEvents struct {
	mu     sync.Mutex
	events []string
}

// Hook is the TableHealth hook to give the writer.
func (h *HealthEvents) Hook(table string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	state := "ok"
	if err != nil {
		state = "failing"
	}
	h.events = append(h.events, table+":"+state)
}

// Events returns the events so far, oldest first.
func (h *HealthEvents) Events() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.events...)
}

// Goroutines counts the running goroutines whose stack holds frame, e.g.
// "apicall.(*Window).watch(": a test that something stopped its
// background work.
func Goroutines(frame string) int {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), frame)
		}
		buf = make([]byte, 2*len(buf))
	}
}
