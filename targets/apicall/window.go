package apicall

import (
	"context"
	"net/http/httptrace"
	"slices"
	"sync"
	"time"
)

// Window keeps a client under a server's "at most n requests in any
// window" limit as the server counts them: by arrival.
//
// A token bucket spaces the moments requests are released, but a request
// released on time can reach the wire late (a dial after a dropped
// connection, a token refresh, a goroutine descheduled on a busy machine)
// while the next one goes out on time, and the server then sees both inside
// one window. Window counts each request from when its headers were
// actually written, and a request that has not been written yet counts as
// arriving now, so no window of the server's can hold more than n of them
// whatever the delays on this side. It admits at most n requests into any
// sliding window of length w.
//
// A request written just before this process stalls (the machine busy, a
// pause of the runtime) may leave it, or reach a server on the same
// machine, only when the stall ends, while the request n later goes out
// on time. So for a while after each write Window watches for stalls, and
// counts a request written shortly before or during one as written when
// it ended. The watcher is a goroutine of the Window's: Close stops it
// and waits for it.
type Window struct {
	n int
	w time.Duration
	// nap is the stall watcher's sleep: time.Sleep, or a test's.
	nap func(time.Duration)

	mu       sync.Mutex
	sent     []*Ticket     // admitted within the last w, or not written yet
	changed  chan struct{} // closed and replaced when a ticket is written
	watching bool          // a stall watcher runs
	watchTo  time.Time     // when it stops, unless a write or stall comes first
	closed   bool          // Close was called: no watcher starts again
	watcher  sync.WaitGroup
}

// The stall watcher wakes every stallProbe; a wake-up later than that by
// stallMin is a stall. A shorter one, with the few milliseconds a server
// takes to read a request outside stalls (the quota benchmark's spread:
// 99% within 3 ms), stays within arrivalSlack. It re-stamps requests
// written from stallReach before it last went to sleep (such a request
// may not have been read yet when the stall began), and watches until
// stallWatch after the last write or stall.
const (
	stallProbe = 2 * time.Millisecond
	stallMin   = 8 * time.Millisecond
	stallReach = 5 * time.Millisecond
	stallWatch = 20 * time.Millisecond
)

// Ticket is one admitted request.
type Ticket struct {
	win     *Window
	written time.Time // zero while the request is not on the wire yet
}

// NewWindow admits n requests per w; n < 1 admits everything.
func NewWindow(n int, w time.Duration) *Window {
	return &Window{n: n, w: w, nap: time.Sleep, changed: make(chan struct{})}
}

// Acquire waits until one more request cannot make any window of the
// server's hold more than n, and admits it. The request's context must come
// from Ticket.Trace, and Done must follow the request.
func (p *Window) Acquire(ctx context.Context) (*Ticket, error) {
	t := &Ticket{win: p}
	if p.n < 1 {
		return t, nil
	}
	for {
		p.mu.Lock()
		now := time.Now()
		p.prune(now)
		if len(p.sent) < p.n {
			p.sent = append(p.sent, t)
			p.mu.Unlock()
			return t, nil
		}
		wait, changed := p.nextFree(now), p.changed
		p.mu.Unlock()
		if err := waitFor(ctx, wait, changed); err != nil {
			return nil, err
		}
	}
}

// prune drops tickets written more than w ago: a request written at or
// before now-w cannot share a window with one written from now on.
func (p *Window) prune(now time.Time) {
	kept := p.sent[:0]
	for _, t := range p.sent {
		if t.written.IsZero() || now.Sub(t.written) < p.w {
			kept = append(kept, t)
		}
	}
	clear(p.sent[len(kept):])
	p.sent = kept
}

// nextFree is how long until the earliest written ticket leaves the window;
// negative when every ticket is still unwritten (then only a write helps).
func (p *Window) nextFree(now time.Time) time.Duration {
	wait := time.Duration(-1)
	for _, t := range p.sent {
		if t.written.IsZero() {
			continue
		}
		if d := t.written.Add(p.w).Sub(now); wait < 0 || d < wait {
			wait = d
		}
	}
	return wait
}

// waitFor waits d (no limit when d < 0), or until changed closes, or until
// ctx ends and then returns its error.
func waitFor(ctx context.Context, d time.Duration, changed <-chan struct{}) error {
	var timeout <-chan time.Time
	if d >= 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-timeout:
	case <-changed:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// Trace returns ctx with a hook that stamps the ticket when the request's
// headers are written: from then on the server may count it.
func (t *Ticket) Trace(ctx context.Context) context.Context {
	if t.win.n < 1 {
		return ctx
	}
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		// The transport may write a request again on a fresh connection;
		// the server counts the later arrival, so the later stamp wins.
		WroteHeaders: func() { t.stamp(true) },
	})
}

// Done ends the request. One that never reached the wire is stamped now,
// since it may have been partly written: a stamp too late only delays the
// next request a little.
func (t *Ticket) Done() {
	if t.win.n >= 1 {
		t.stamp(false)
	}
}

// resize changes the window's length, for requests admitted from now on.
func (p *Window) resize(w time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.w = w
}

// cancel gives the ticket back unused: its request never left.
func (t *Ticket) cancel() {
	p := t.win
	if p.n < 1 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := slices.Index(p.sent, t); i >= 0 {
		p.sent = slices.Delete(p.sent, i, i+1)
		close(p.changed)
		p.changed = make(chan struct{})
	}
}

func (t *Ticket) stamp(again bool) {
	p := t.win
	p.mu.Lock()
	defer p.mu.Unlock()
	if !again && !t.written.IsZero() {
		return
	}
	t.written = time.Now()
	close(p.changed)
	p.changed = make(chan struct{})
	p.watchTo = t.written.Add(stallWatch)
	if !p.watching && !p.closed {
		p.watching = true
		p.watcher.Add(1)
		go p.watch(t.written)
	}
}

// Close stops the stall watcher and returns once it has ended (within a
// stallProbe). Requests may still be admitted after Close, but a stall
// no longer re-stamps them: the owner closes the Window when its requests
// are over.
func (p *Window) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.watcher.Wait()
}

// watch runs while requests were written lately, and re-stamps those a
// stall may have held up. awake is when this process was last known to
// run: the write that started the watcher, so that a watcher started late
// counts as a stall too.
func (p *Window) watch(awake time.Time) {
	defer p.watcher.Done()
	for {
		p.nap(stallProbe)
		now := time.Now()
		p.mu.Lock()
		if now.Sub(awake) > stallProbe+stallMin {
			for _, t := range p.sent {
				if !t.written.IsZero() && !t.written.Before(awake.Add(-stallReach)) {
					t.written = now
				}
			}
			p.watchTo = now.Add(stallWatch)
		}
		if now.After(p.watchTo) || p.closed {
			p.watching = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		awake = now
	}
}
