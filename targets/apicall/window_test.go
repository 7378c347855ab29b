package apicall

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/replicator-cdc/replicator/internal/testkit"
)

func TestUnwrittenRequestCountsAsArrivingNow(t *testing.T) {
	p := NewWindow(2, time.Hour)
	a, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Acquire(ctx); err == nil {
		t.Fatal("a third request was admitted while two were in the window")
	}
	a.Done()
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Acquire(ctx); err == nil {
		t.Fatal("a request written an hour-long window ago no longer counts")
	}
}

func TestWrittenRequestLeavesAfterTheWindow(t *testing.T) {
	p := NewWindow(1, 30*time.Millisecond)
	a, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.Acquire(ctx); err != nil {
		t.Fatalf("the second request never got in: %v", err)
	}
	if gap := time.Since(a.written); gap < 30*time.Millisecond {
		t.Fatalf("admitted %v after the first was written, window 30ms", gap)
	}
}

// Requests that reach the wire late (a dial, a stall) must not crowd the
// next window: counted by when their headers were written, no window of
// length w holds more than n, however late each one went out.
func TestNoWindowHoldsMoreThanNWhateverTheDelays(t *testing.T) {
	const n, w = 3, 60 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	p := NewWindow(n, w)
	var mu sync.Mutex
	var stamps []time.Time
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 8 {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				ticket, err := p.Acquire(ctx)
				if err != nil {
					cancel()
					t.Error(err)
					return
				}
				time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
				ctx = httptrace.WithClientTrace(ticket.Trace(ctx), &httptrace.ClientTrace{WroteHeaders: func() {
					mu.Lock()
					stamps = append(stamps, time.Now())
					mu.Unlock()
				}})
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, nil)
				resp, err := srv.Client().Do(req)
				ticket.Done()
				cancel()
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	slices.SortFunc(stamps, func(a, b time.Time) int { return a.Compare(b) })
	if len(stamps) != 32 {
		t.Fatalf("%d requests written, want 32", len(stamps))
	}
	for i := n; i < len(stamps); i++ {
		if d := stamps[i].Sub(stamps[i-n]); d < w {
			t.Fatalf("requests %d and %d were written %v apart: %d requests within one %v window", i-n, i, d, n+1, w)
		}
	}
}

// A request written just before this process stalls reaches a server on
// the same machine only when the stall ends, while the request n later
// goes out on time. The watcher must see the stall and count the held
// request from its end. Here the first request's arrival is held until a
// simulated stall ends, and the watcher's first sleep lasts until the
// server has counted it; the server's count of arrivals in any window of
// length w must stay within n.
func TestStallDoesNotCrowdTheNextWindow(t *testing.T) {
	const n, w = 2, 300 * time.Millisecond
	release, counted := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var arrived []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		held := r.URL.Path == "/held"
		if held {
			<-release
		}
		mu.Lock()
		arrived = append(arrived, time.Now())
		mu.Unlock()
		if held {
			close(counted)
		}
	}))
	defer srv.Close()
	defer srv.CloseClientConnections()
	p := NewWindow(n, w)
	stalled := false
	p.nap = func(d time.Duration) {
		if stalled {
			time.Sleep(d)
			return
		}
		stalled = true
		time.Sleep(150 * time.Millisecond)
		close(release)
		<-counted
	}
	var wg sync.WaitGroup
	for i := range 2 * n {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ticket, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		path := "/"
		if i == 0 {
			path = "/held"
		}
		req, _ := http.NewRequestWithContext(ticket.Trace(ctx), http.MethodPost, srv.URL+path, nil)
		wg.Go(func() {
			defer ticket.Done()
			if resp, err := srv.Client().Do(req); err != nil {
				t.Error(err)
			} else {
				resp.Body.Close()
			}
		})
		if i == 0 {
			// The first request must be on the wire before the others go.
			for ticket.writtenAt().IsZero() {
				time.Sleep(time.Millisecond)
			}
		}
	}
	wg.Wait()
	slices.SortFunc(arrived, time.Time.Compare)
	for i := n; i < len(arrived); i++ {
		if d := arrived[i].Sub(arrived[i-n]); d < w {
			t.Fatalf("requests %d and %d arrived %v apart: %d requests within one %v window", i-n, i, d, n+1, w)
		}
	}
}

func (t *Ticket) writtenAt() time.Time {
	t.win.mu.Lock()
	defer t.win.mu.Unlock()
	return t.written
}

// The stall watcher is the Window's goroutine: Close returns only once it
// has ended, and a request written after Close starts none.
func TestCloseLeavesNoStallWatcher(t *testing.T) {
	p := NewWindow(2, time.Hour)
	asleep := make(chan struct{}, 1)
	p.nap = func(time.Duration) {
		select {
		case asleep <- struct{}{}:
		default:
		}
		// Long enough that a Close which did not wait would return
		// while the watcher still sleeps.
		time.Sleep(50 * time.Millisecond)
	}
	write := func() {
		ticket, err := p.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ticket.Done()
	}
	write()
	<-asleep
	p.Close()
	if p.isWatching() {
		t.Fatal("Close returned while the stall watcher still ran")
	}
	// Its goroutine has run its last statement; give it the moment to go.
	for i := 0; stallWatchers() > 0; i++ {
		if i == 1000 {
			t.Fatal("a stall watcher goroutine is left after Close")
		}
		time.Sleep(time.Millisecond)
	}
	write()
	if p.isWatching() || stallWatchers() > 0 {
		t.Fatal("a write after Close started a stall watcher")
	}
}

func (p *Window) isWatching() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.watching
}

// stallWatchers counts the goroutines running a Window's stall watcher.
func stallWatchers() int { return testkit.Goroutines("apicall.(*Window).watch(") }
