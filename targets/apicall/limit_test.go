package apicall

import (
	"context"
	"testing"
	"time"
)

// changedWithin waits for ch to close, failing the test after a minute.
func changedWithin(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(time.Minute):
		t.Fatalf("no signal: %s", what)
	}
}

// TestBacklogCountsWaitersAndPause: the backlog counts the callers queued
// at the limiter and a pause in force, and signals each change without
// being asked again: a caller queuing and leaving, a pause ordered and
// ended.
func TestBacklogCountsWaitersAndPause(t *testing.T) {
	l := NewLimiter(0.5) // a token every ~2 s: the second caller queues
	first, err := l.wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	first.Done()
	n, changed := l.Backlog()
	if n != 0 {
		t.Fatalf("backlog %d with nobody waiting, want 0", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	left := make(chan error, 1)
	go func() {
		_, err := l.wait(ctx)
		left <- err
	}()
	changedWithin(t, changed, "a caller queued")
	if n, changed = l.Backlog(); n != 1 {
		t.Fatalf("backlog %d with one caller queued, want 1", n)
	}
	cancel()
	if err := <-left; err == nil {
		t.Fatal("the queued caller left before its slot")
	}
	changedWithin(t, changed, "the queued caller left")
	if n, changed = l.Backlog(); n != 0 {
		t.Fatalf("backlog %d after the caller left, want 0", n)
	}

	l.Pause(time.Hour)
	changedWithin(t, changed, "a pause was ordered")
	if n, _ = l.Backlog(); n != 1 {
		t.Fatalf("backlog %d in a pause, want 1", n)
	}

	short := NewLimiter(0.5)
	_, changed = short.Backlog()
	short.Pause(50 * time.Millisecond)
	changedWithin(t, changed, "a pause was ordered")
	n, changed = short.Backlog()
	for i := 0; n == 1 && i < 10; i++ {
		changedWithin(t, changed, "the pause ended")
		n, changed = short.Backlog()
	}
	if n != 0 {
		t.Fatalf("backlog %d after the pause, want 0", n)
	}
}
