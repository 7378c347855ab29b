package apicall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/replicator-cdc/replicator/metrics"
)

// answers serves the given status and body per request, in order; the
// last one repeats.
type answers struct {
	mu     sync.Mutex
	seen   []string // Authorization headers
	status []int
	body   []string
}

func (a *answers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	i := min(len(a.seen), len(a.status)-1)
	a.seen = append(a.seen, r.Header.Get("Authorization"))
	status, body := a.status[i], a.body[i]
	a.mu.Unlock()
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// newClient serves h and returns a client of it. Do logs from its
// caller's goroutine, so the log needs no lock.
func newClient(t *testing.T, h http.Handler, cred Credential) (*Client, *metrics.Target, *bytes.Buffer, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	m := metrics.NewTarget(prometheus.NewRegistry())
	logs := &bytes.Buffer{}
	c := New(Config{
		Name: "t", What: "test target", HTTP: srv.Client(), Limiter: NewLimiter(0), Credential: cred,
		Metrics: m, Log: slog.New(slog.NewTextHandler(logs, nil)), Timeout: 5 * time.Second,
		RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond, MaxAnswerBytes: 1 << 20,
	})
	return c, m, logs, srv.URL
}

// byStatus is a classifier table of the simplest API: 2xx done, 401
// refresh, 5xx retry with the body as the failure.
func byStatus(a *Answer) Verdict {
	switch {
	case a.Status/100 == 2:
		return Verdict{Action: Done}
	case a.Status == http.StatusUnauthorized:
		return Verdict{Action: Refresh, Reason: ReasonTokenExpired, Failure: errors.New(string(a.Body))}
	case a.Status/100 == 5:
		return Verdict{Action: Retry, Reason: ReasonServer, Failure: errors.New(string(a.Body))}
	}
	return Verdict{Action: Fatal, Reason: ReasonUnexpected}
}

// TestLogsOncePerChangeOfError: six failed attempts of two kinds log two
// lines, and the success after them one; every attempt is counted.
func TestLogsOncePerChangeOfError(t *testing.T) {
	h := &answers{status: []int{500, 500, 500, 500, 503, 503, 200}, body: []string{"a", "a", "a", "a", "b", "b", "{}"}}
	c, m, logs, url := newClient(t, h, nil)
	v, err := c.Do(context.Background(), Request{Op: "upsert", Table: "x", Method: http.MethodPost, URL: url}, byStatus)
	if err != nil || v.Action != Done {
		t.Fatalf("got %v, %v", v, err)
	}
	if n := strings.Count(logs.String(), "request failed"); n != 2 {
		t.Errorf("%d failure lines, want 2:\n%s", n, logs)
	}
	if n := strings.Count(logs.String(), "succeed again"); n != 1 {
		t.Errorf("%d recovery lines, want 1:\n%s", n, logs)
	}
	if n := testutil.ToFloat64(m.Errors.WithLabelValues("t", ReasonServer)); n != 6 {
		t.Errorf("%v server errors counted, want 6", n)
	}
	if n := testutil.ToFloat64(m.Requests.WithLabelValues("t", "x", "upsert", "retry")); n != 6 {
		t.Errorf("%v retries counted, want 6", n)
	}
}

// rotating is a credential whose refusal hands out the next token.
type rotating struct {
	mu   sync.Mutex
	toks []string
}

func (r *rotating) Token(context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.toks[0], nil
}

func (r *rotating) Refused(tok string, failure error, n int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.toks) == 1 {
		return fmt.Errorf("no token left after %d refusals: %w", n, failure)
	}
	if r.toks[0] == tok {
		r.toks = r.toks[1:]
	}
	return nil
}

// TestRefreshThenRetry: a refused credential is renewed and the request
// sent again with the new one, at once; when none is left the call ends.
func TestRefreshThenRetry(t *testing.T) {
	h := &answers{status: []int{401, 200}, body: []string{"expired", "{}"}}
	cred := &rotating{toks: []string{"old", "new"}}
	c, m, _, url := newClient(t, h, cred)
	if v, err := c.Do(context.Background(), Request{Op: "upsert", Method: http.MethodPost, URL: url}, byStatus); err != nil || v.Action != Done {
		t.Fatalf("got %v, %v", v, err)
	}
	if want := []string{"Bearer old", "Bearer new"}; fmt.Sprint(h.seen) != fmt.Sprint(want) {
		t.Errorf("sent %v, want %v", h.seen, want)
	}
	if n := testutil.ToFloat64(m.Errors.WithLabelValues("t", ReasonTokenExpired)); n != 1 {
		t.Errorf("%v token_expired counted, want 1", n)
	}

	h = &answers{status: []int{401}, body: []string{"expired"}}
	c, m, _, url = newClient(t, h, &rotating{toks: []string{"only"}})
	_, err := c.Do(context.Background(), Request{Op: "upsert", Method: http.MethodPost, URL: url}, byStatus)
	if err == nil || !strings.Contains(err.Error(), "no token left") {
		t.Fatalf("got %v, want the credential's error", err)
	}
	if n := testutil.ToFloat64(m.Requests.WithLabelValues("t", "", "upsert", "fatal")); n != 1 {
		t.Errorf("%v fatal outcomes, want 1", n)
	}
}

// TestPauseHoldsQueuedCaller: a caller already waiting at the limiter when
// a pause is ordered does not leave before the pause ends.
func TestPauseHoldsQueuedCaller(t *testing.T) {
	l := NewLimiter(0.5) // a token every ~2 s: the second caller queues
	first, err := l.wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	first.Done()
	left := make(chan time.Time, 1)
	go func() {
		tk, err := l.wait(context.Background())
		if err == nil {
			tk.Done()
		}
		left <- time.Now()
	}()
	time.Sleep(50 * time.Millisecond)
	ordered := time.Now()
	l.Pause(3 * time.Second)
	until := l.pausedUntil()
	select {
	case at := <-left:
		if at.Before(ordered) {
			t.Skip("the machine stalled: the caller left before the pause was ordered")
		}
		if at.Before(until) {
			t.Errorf("the queued caller left %v before the pause ended", until.Sub(at))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the queued caller never left")
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var _ net.Error = timeoutErr{}

func TestTransportVerdict(t *testing.T) {
	for _, tc := range []struct {
		err    error
		reason string
	}{
		{fmt.Errorf("post: %w", context.DeadlineExceeded), ReasonTimeout},
		{timeoutErr{}, ReasonTimeout},
		{errors.New("connection refused"), ReasonConnection},
		{fmt.Errorf("post: %w", io.EOF), ReasonConnection},
	} {
		if v := transportVerdict(tc.err); v.Action != Retry || v.Reason != tc.reason || v.Failure != tc.err {
			t.Errorf("%v: got %v/%s", tc.err, v.Action, v.Reason)
		}
	}
}

func TestSeconds(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"": 0, "2": 2 * time.Second, " 1 ": time.Second, "-1": 0, "soon": 0, "99999999": maxReset,
		"Wed, 21 Oct 2015 07:28:00 GMT": 0,
	} {
		if got := Seconds(in); got != want {
			t.Errorf("Seconds(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestRecoveryEndsBackoffs: a request sleeping in a retry backoff of an
// hour is sent again as soon as another request of the client, which
// failed (here a throttle), is applied: the API is back. A request applied
// at its first attempt proves nothing and wakes nobody.
func TestRecoveryEndsBackoffs(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	down := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		n, isDown := hits[r.URL.Path], down
		mu.Unlock()
		switch {
		case isDown:
			w.WriteHeader(http.StatusServiceUnavailable)
		case r.URL.Path == "/throttled" && n == 1:
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	classify := func(a *Answer) Verdict {
		if a.Status == http.StatusTooManyRequests {
			return Verdict{Action: Throttle, Reason: ReasonThrottled, Reset: time.Millisecond}
		}
		return byStatus(a)
	}
	c := New(Config{
		Name: "t", What: "test target", HTTP: srv.Client(), Limiter: NewLimiter(0), Metrics: metrics.NewTarget(prometheus.NewRegistry()),
		Timeout: 5 * time.Second, RetryMin: time.Hour, RetryMax: time.Hour, MaxAnswerBytes: 1 << 20,
	})
	attempts := func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return hits[path]
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	slept := make(chan error, 1)
	go func() {
		v, err := c.Do(ctx, Request{Op: "upsert", Method: http.MethodPost, URL: srv.URL + "/sleeper"}, classify)
		if err == nil && v.Action != Done {
			err = fmt.Errorf("verdict %v", v.Action)
		}
		slept <- err
	}()
	for attempts("/sleeper") == 0 {
		if ctx.Err() != nil {
			t.Fatal("the first request never reached the server")
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	if v, err := c.Do(ctx, Request{Op: "upsert", Method: http.MethodPost, URL: srv.URL + "/fresh"}, classify); err != nil || v.Action != Done {
		t.Fatalf("fresh request: %v, %v", v, err)
	}
	if n := attempts("/sleeper"); n != 1 {
		t.Fatalf("a request applied at its first attempt woke the sleeper: %d attempts", n)
	}
	if v, err := c.Do(ctx, Request{Op: "upsert", Method: http.MethodPost, URL: srv.URL + "/throttled"}, classify); err != nil || v.Action != Done {
		t.Fatalf("throttled request: %v, %v", v, err)
	}
	if err := <-slept; err != nil {
		t.Fatalf("the sleeping request was not woken when the API was back: %v", err)
	}
	if n := attempts("/sleeper"); n != 2 {
		t.Errorf("the sleeping request made %d attempts, want 2", n)
	}
}

// A throttling answer means the server counted arrivals closer together
// than this side wrote them: the slack doubles (the window and the slots
// widen with it) up to its cap, and narrows again, halving, after a quiet
// spell of narrowAfter windows' worth of requests.
func TestThrottleWidensTheArrivalSlack(t *testing.T) {
	l := NewLimiter(10)
	window := func() time.Duration {
		l.window.mu.Lock()
		defer l.window.mu.Unlock()
		return l.window.w
	}
	check := func(slack time.Duration) {
		t.Helper()
		if l.slack != slack || window() != time.Second+slack || l.slotInterval() != (time.Second+slack)/10 {
			t.Fatalf("slack %v, window %v, interval %v; want slack %v", l.slack, window(), l.slotInterval(), slack)
		}
	}
	check(arrivalSlack)
	l.Pause(time.Millisecond)
	check(2 * arrivalSlack)
	for range 10 {
		l.Pause(time.Millisecond)
	}
	check(maxArrivalSlack)
	for range narrowAfter*10 - 1 {
		l.released()
	}
	check(maxArrivalSlack)
	l.released()
	check(maxArrivalSlack / 2)
	for range 10 * narrowAfter * 10 {
		l.released()
	}
	check(arrivalSlack)

	unpaced := NewLimiter(0)
	unpaced.Pause(time.Millisecond)
	if unpaced.slack != 0 || unpaced.released() != 0 {
		t.Fatalf("an unpaced limiter got slack %v", unpaced.slack)
	}
}
