package apicall

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/metrics"
)

// flaky is an API that fails as a real one in an outage does while down
// is set: every other request is answered 503, the rest lose their
// connection before any answer. Requests to /bad always get a 503. It
// counts the requests that reached it, and those it applied.
type flaky struct {
	down     atomic.Bool
	attempts atomic.Int64
	applied  atomic.Int64
	bad      atomic.Int64
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.attempts.Add(1)
	switch {
	case r.URL.Path == "/bad":
		f.bad.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	case !f.down.Load():
		f.applied.Add(1)
		w.WriteHeader(http.StatusOK)
	case n%2 == 0:
		w.WriteHeader(http.StatusServiceUnavailable)
	default:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}
}

type outageRig struct {
	api  *flaky
	c    *Client
	m    *metrics.Target
	logs *testkit.LockedBuffer
	url  string
}

func newOutageRig(t *testing.T, cfg Config) *outageRig {
	t.Helper()
	api := &flaky{}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	rig := &outageRig{api: api, m: metrics.NewTarget(prometheus.NewRegistry()), logs: &testkit.LockedBuffer{}, url: srv.URL}
	cfg.Name, cfg.What, cfg.HTTP, cfg.Limiter, cfg.Metrics = "t", "test target", srv.Client(), NewLimiter(0), rig.m
	cfg.Log = slog.New(slog.NewTextHandler(rig.logs, nil))
	cfg.Timeout, cfg.MaxAnswerBytes = 5*time.Second, 1<<20
	rig.c = New(cfg)
	return rig
}

func (rig *outageRig) down() float64 { return testutil.ToFloat64(rig.m.Down.WithLabelValues("t")) }

// send starts n requests to path and returns their results as they end.
func (rig *outageRig) send(ctx context.Context, n int, path string) <-chan error {
	done := make(chan error, n)
	for range n {
		go func() {
			v, err := rig.c.Do(ctx, Request{Op: "upsert", Table: "x", Method: http.MethodPost, URL: rig.url + path}, byStatus)
			if err == nil && v.Action != Done {
				err = errors.New("not applied")
			}
			done <- err
		}()
	}
	return done
}

// TestDownAPIGetsOneProbeAtATime: eight requests in flight into an API
// that fails every request (503s and dropped connections) send once each;
// from then on one probe at a time reaches it, each after a backoff of at
// least probeMin/2 (ProbeMax = RetryMin = RetryMax here, so that requests
// retrying on their own backoffs would send eight times as often). The
// gauge and one log line say the API is down.
func TestDownAPIGetsOneProbeAtATime(t *testing.T) {
	const n, probeMax = 8, 40 * time.Millisecond
	rig := newOutageRig(t, Config{RetryMin: probeMax, RetryMax: probeMax, ProbeMax: probeMax})
	rig.api.down.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	began := time.Now()
	done := rig.send(ctx, n, "/")
	testkit.Eventually(t, 30*time.Second, "the first wave", func() bool { return rig.api.attempts.Load() >= n })
	time.Sleep(time.Second)
	down := rig.down()
	cancel()
	for range n {
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("a request ended with %v, want the context's end", err)
		}
	}
	elapsed := time.Since(began)
	attempts := rig.api.attempts.Load()
	// The first wave, then probes at least probeMax/2 apart, the first one
	// at least that long after the outage was noticed; one for rounding.
	if bound := int64(n) + int64(elapsed/(probeMax/2)) + 1; attempts > bound {
		t.Errorf("the down API got %d requests in %v, want at most %d (one probe at a time)", attempts, elapsed, bound)
	}
	t.Logf("%d requests in %v", attempts, elapsed)
	if attempts <= n {
		t.Errorf("the down API got %d requests: no probe", attempts)
	}
	if down != 1 {
		t.Errorf("the gauge says %v APIs down, want 1", down)
	}
	if k := strings.Count(rig.logs.String(), "fails every request"); k != 1 {
		t.Errorf("%d outage lines, want 1:\n%s", k, rig.logs)
	}
}

// TestOneProbeEndsTheOutageForAll: requests held back by an outage
// (two of them in their own backoff of an hour, from before the outage
// was noticed) are all sent as soon as one probe is applied: each reaches
// the API once more, and none waits out its own backoff.
func TestOneProbeEndsTheOutageForAll(t *testing.T) {
	const n = 8
	rig := newOutageRig(t, Config{RetryMin: time.Hour, RetryMax: time.Hour, ProbeMax: 20 * time.Millisecond})
	rig.api.down.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := rig.send(ctx, n, "/")
	testkit.Eventually(t, 30*time.Second, "three probes", func() bool { return rig.api.attempts.Load() >= n+3 })
	rig.api.down.Store(false)
	for range n {
		if err := <-done; err != nil {
			t.Fatalf("a held request: %v (waiting out its own backoff of an hour?)", err)
		}
	}
	if got := rig.api.applied.Load(); got != n {
		t.Errorf("the API applied %d requests after it was back, want %d (one each)", got, n)
	}
	if rig.down() != 0 {
		t.Error("the gauge still says the API is down")
	}
	if k := strings.Count(rig.logs.String(), "answers again"); k != 1 {
		t.Errorf("%d recovery lines, want 1:\n%s", k, rig.logs)
	}
}

// TestOutageKeepsMaxRetries: a request held back by an outage counts the
// probes that failed meanwhile as its own retries, so that every request
// still gives up after MaxRetries failures, as it did retrying alone, and
// the probes are not multiplied by the requests held back.
func TestOutageKeepsMaxRetries(t *testing.T) {
	const n = 8
	rig := newOutageRig(t, Config{RetryMin: time.Millisecond, RetryMax: time.Millisecond, MaxRetries: 2})
	rig.api.down.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := rig.send(ctx, n, "/")
	for range n {
		if err := <-done; err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") {
			t.Fatalf("got %v, want giving up after 3 attempts", err)
		}
	}
	// Retrying alone, each request would have sent 3 times.
	if got := rig.api.attempts.Load(); got > 2*n {
		t.Errorf("the down API got %d requests, want at most %d", got, 2*n)
	}
}

// TestOneFailingRequestDoesNotStopTheOthers: a request the API keeps
// failing for reasons of its own, while it applies the others, does not
// take the API for down, and keeps its own retries; when it is the only
// request and does take the API for down, it does not keep the probe
// turn: the next request gets it, is applied, and the outage ends.
func TestOneFailingRequestDoesNotStopTheOthers(t *testing.T) {
	// Backoffs of 200–400 ms: the API is taken for down only after some
	// 400 ms with no other answer, which two requests looping on a loaded
	// machine (the race detector, other tests) do not leave.
	rig := newOutageRig(t, Config{RetryMin: 400 * time.Millisecond, RetryMax: 400 * time.Millisecond, ProbeMax: 400 * time.Millisecond, MaxRetries: 8})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bad := rig.send(ctx, 1, "/bad")
	var wg sync.WaitGroup
	var stop atomic.Bool
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100_000 && !stop.Load(); i++ {
				if err := <-rig.send(ctx, 1, "/"); err != nil {
					t.Errorf("a request the API applies: %v", err)
					return
				}
			}
		}()
	}
	err := <-bad
	stop.Store(true)
	wg.Wait()
	if err == nil || !strings.Contains(err.Error(), "giving up after 9 attempts") {
		t.Fatalf("the failing request: %v, want giving up after its 9 attempts", err)
	}
	if got := rig.api.bad.Load(); got != 9 {
		t.Errorf("the failing request was sent %d times, want 9", got)
	}
	if strings.Contains(rig.logs.String(), "fails every request") {
		t.Errorf("one request failing took the API for down:\n%s", rig.logs)
	}

	rig.c.cfg.MaxRetries = 0
	bad = rig.send(ctx, 1, "/bad")
	testkit.Eventually(t, 30*time.Second, "the lone failing request taking the API for down", func() bool { return rig.down() == 1 })
	if err := <-rig.send(ctx, 1, "/"); err != nil {
		t.Fatalf("a request arriving while the lone failing one probed: %v", err)
	}
	if rig.down() != 0 {
		t.Error("the outage did not end when a request was applied")
	}
	cancel()
	<-bad
}

// TestOnlyRetryableFailuresMeanDown: throttling answers (which pause the
// credential by themselves) and refusals are answers of an API that is
// up: they neither count towards an outage nor let two retryable failures
// around them add up to one.
func TestOnlyRetryableFailuresMeanDown(t *testing.T) {
	classify := func(a *Answer) Verdict {
		switch a.Status {
		case http.StatusTooManyRequests:
			return Verdict{Action: Throttle, Reason: ReasonThrottled, Reset: time.Millisecond}
		case http.StatusBadRequest:
			return Verdict{Action: Reject, Reason: ReasonRejected}
		}
		return byStatus(a)
	}
	h := &answers{
		status: []int{429, 429, 429, 429, 503, 503, 429, 503, 503, 400, 503, 503, 400, 400, 400, 400, 200},
		body:   make([]string, 17),
	}
	c, m, logs, url := newClient(t, h, nil)
	for range 6 {
		if _, err := c.Do(context.Background(), Request{Op: "upsert", Method: http.MethodPost, URL: url}, classify); err != nil {
			t.Fatal(err)
		}
	}
	if len(h.seen) != len(h.status) {
		t.Fatalf("%d answers used, want %d", len(h.seen), len(h.status))
	}
	if strings.Contains(logs.String(), "fails every request") || testutil.ToFloat64(m.Down.WithLabelValues("t")) != 0 {
		t.Errorf("throttling answers or refusals taken for an outage:\n%s", logs)
	}
}
