package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

const (
	// tokenVar carries the fake's user access token into the configuration.
	tokenVar = "E2E_FEISHU_TOKEN"
	// mirrorTimeout bounds the wait for the mirror to converge; at 10
	// requests per second with faults it takes seconds, not minutes.
	mirrorTimeout = 4 * time.Minute
	// rateLimit is both the writer's requests_per_second and the fake's
	// limit, Feishu's documented 10 per second.
	rateLimit = 10
)

// TestFeishuMirrorWithFaults runs the daemon in-process from a real
// PostgreSQL to the fake Feishu, which fails 10% of the record writes (5xx,
// answers slower than the request timeout, dropped connections) and applies
// another 5% but loses the answer. A snapshot of a few thousand rows, then
// random inserts, updates (some leaving an out-of-line value unchanged),
// deletes, NULLs and key changes, with a stop and restart on the same state
// in the middle and changes made while the daemon is down, must end with
// the Feishu table equal to the source value for value, never a request
// over the rate limit, and no record given up.
func TestFeishuMirrorWithFaults(t *testing.T) {
	ctx := context.Background()
	src := newDatabase(t)
	db := src.db
	seedRows(t, db, 3000)

	// Slow answers outlast the writer's 2s request timeout, so that the
	// client gives up on them and the fake applies nothing.
	fake := newFake(t, feishufake.Options{SlowDelay: 3 * time.Second, Seed: 42})
	// One of each first, so that every kind certainly happens; then 10%
	// failures and 5% lost answers at random.
	fake.InjectFaults(feishufake.FaultServerError, feishufake.FaultSlow, feishufake.FaultDrop, feishufake.FaultLostAnswer)
	fake.SetFaultRate(0.15,
		feishufake.FaultServerError, feishufake.FaultServerError,
		feishufake.FaultSlow, feishufake.FaultSlow,
		feishufake.FaultDrop, feishufake.FaultDrop,
		feishufake.FaultLostAnswer, feishufake.FaultLostAnswer, feishufake.FaultLostAnswer)

	stateDir := t.TempDir()
	const shutdown = 10 * time.Second
	token := fake.AccessToken()
	cfg, err := config.Parse("e2e.yaml", []byte(configYAML(src, stateDir, fake.URL(), tokenVar, 100, shutdown)), func(name string) (string, bool) {
		if name == tokenVar {
			return token, true
		}
		return "", false
	})
	require.NoError(t, err)

	logs := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log (end):\n%s", tail(logs.String(), 64<<10))
		}
	})
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))

	started := time.Now()
	d := startRun(t, cfg, logger)
	w := newWorkload(db, 1, 3001)
	// The first changes race the snapshot, the rest follow it.
	require.NoError(t, w.run(ctx, 150, 20*time.Millisecond))
	waitStreaming(t, src, d, time.Minute)
	require.NoError(t, w.run(ctx, 150, 30*time.Millisecond))

	// A stop in the middle, as on SIGTERM: it drains within the bound.
	stopStart := time.Now()
	require.NoError(t, d.stop(shutdown+10*time.Second), "a stop drains and returns nil")
	t.Logf("first run stopped in %s", time.Since(stopStart).Round(time.Millisecond))
	// Changes made while the daemon is down wait in the slot.
	require.NoError(t, w.run(ctx, 80, 0))

	d = startRun(t, cfg, logger)
	require.NoError(t, w.run(ctx, 300, 30*time.Millisecond))
	waitMirror(t, db, fake, mirrorTimeout, d.exited)
	slotCatchesUp(t, db, src.name, 30*time.Second)
	require.NoError(t, d.stop(shutdown+10*time.Second))
	elapsed := time.Since(started)

	reqs := fake.Requests()
	writes := writeRequests(reqs)
	faults := faultCounts(writes)
	t.Logf("%d changes in %s; %d requests, %d record writes, busiest second %d record calls; faults: %v; daemon log:%s",
		w.runs, elapsed.Round(time.Millisecond), len(reqs), len(writes), feishufake.MaxPerWindow(recordCalls(reqs), time.Second), faults, logSummary(logs.String()))
	for _, f := range []feishufake.Fault{feishufake.FaultServerError, feishufake.FaultSlow, feishufake.FaultDrop, feishufake.FaultLostAnswer} {
		assert.Positive(t, faults[f], "fault %s never happened", f)
	}
	assert.Empty(t, unsolicitedThrottles(reqs), "the fake throttled the writer on its own")
	calls := recordCalls(reqs)
	assert.LessOrEqual(t, feishufake.MaxPerWindow(calls, time.Second), rateLimit, "record calls in one second:%s", busiestWindow(calls, time.Second))
	requireNoDeadLetters(t, stateDir)

	var toasted int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM items WHERE big IS NOT NULL`).Scan(&toasted))
	assert.Positive(t, toasted, "the workload must keep out-of-line values around")
}

// run is app.Run started in the background.
type run struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // what Run returned, set before done is closed
	once   sync.Once
}

func startRun(t *testing.T, cfg *config.Config, logger *slog.Logger) *run {
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = app.Run(ctx, cfg, app.Deps{Logger: logger})
	}()
	// A generous bound: a failed test must still not leave Run behind.
	t.Cleanup(func() { _ = r.stop(time.Minute) })
	return r
}

// exited returns an error once Run has returned, nil while it runs.
func (r *run) exited() error {
	select {
	case <-r.done:
		return fmt.Errorf("app.Run returned %v", r.err)
	default:
		return nil
	}
}

// stop cancels Run's context and returns what Run returned, or an error
// when it did not return within bound.
func (r *run) stop(bound time.Duration) error {
	var err error
	r.once.Do(func() {
		r.cancel()
		select {
		case <-r.done:
			err = r.err
		case <-time.After(bound):
			err = fmt.Errorf("app.Run did not return within %s of the stop", bound)
		}
	})
	return err
}

// waitStreaming waits until the daemon holds the slot, which it does only
// once the snapshot is confirmed.
func waitStreaming(t *testing.T, src database, r *run, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var active bool
		err := src.db.QueryRow(context.Background(), `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, src.name).Scan(&active)
		if err == nil && active {
			return
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			require.NoError(t, err)
		}
		if err := r.exited(); err != nil {
			t.Fatalf("the daemon stopped before streaming: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the daemon did not start streaming within %s", timeout)
}

// TestFeishuSurvivesSIGKILL runs the built binary and kills it with SIGKILL
// five times at random points (during the snapshot and while streaming)
// while the source keeps changing, restarting it on the same state each
// time; a last run must bring the Feishu table to the source's state, and
// SIGTERM must then stop it within the drain bound with exit code 0.
func TestFeishuSurvivesSIGKILL(t *testing.T) {
	ctx := context.Background()
	bin := buildDaemon(t)
	src := newDatabase(t)
	db := src.db
	seedRows(t, db, 3000)

	fake := newFake(t, feishufake.Options{SlowDelay: 3 * time.Second, Seed: 7})
	fake.SetFaultRate(0.05, feishufake.FaultServerError, feishufake.FaultSlow, feishufake.FaultDrop, feishufake.FaultLostAnswer)

	dir := t.TempDir()
	const shutdown = 5 * time.Second
	stateDir := filepath.Join(dir, "state")
	cfgPath := filepath.Join(dir, "replicator.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(configYAML(src, stateDir, fake.URL(), tokenVar, 50, shutdown)), 0o600))
	env := append(os.Environ(), tokenVar+"="+fake.AccessToken())
	logPath := filepath.Join(dir, "daemon.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("daemon log (end):\n%s", tail(string(b), 64<<10))
		}
	})

	writes := startWriting(t, src.dsn, 2, 3001)

	// The kill points differ from run to run, to cover more of them over
	// time; the seed is logged to replay a failure's timing.
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill delay seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 4))
	for i := range 5 {
		p := startDaemon(t, bin, cfgPath, env, logPath, fmt.Sprintf("run %d, killed", i+1))
		delay := 500*time.Millisecond + time.Duration(rng.Int64N(int64(3500*time.Millisecond)))
		select {
		case <-p.done:
			t.Fatalf("run %d exited on its own before the kill: %v", i+1, p.err)
		case <-time.After(delay):
		}
		require.NoError(t, p.kill(10*time.Second))
		t.Logf("run %d killed after %s; %d record writes so far", i+1, delay.Round(time.Millisecond), len(writeRequests(fake.Requests())))
	}
	changes := writes.stop(t)

	p := startDaemon(t, bin, cfgPath, env, logPath, "final run")
	waitMirror(t, db, fake, mirrorTimeout, p.exited)
	slotCatchesUp(t, db, src.name, 30*time.Second)

	termAt := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	// The drain bound, plus the time to send the last status update and
	// close connections.
	bound := shutdown + 3*time.Second
	select {
	case <-p.done:
	case <-time.After(bound):
		t.Fatalf("the daemon did not exit within %s of SIGTERM", bound)
	}
	stopped := time.Since(termAt)
	require.Equal(t, 0, p.cmd.ProcessState.ExitCode(), "exit status after SIGTERM: %v", p.err)

	log, err := os.ReadFile(logPath)
	require.NoError(t, err)
	require.NotContains(t, string(log), "WARNING: DATA RACE")
	requireNoDeadLetters(t, stateDir)
	// The final state must hold however it was reached; show it anyway.
	problems, _, err := mirrorDiff(ctx, db, fake)
	require.NoError(t, err)
	require.Empty(t, problems)

	reqs := fake.Requests()
	t.Logf("%d changes; SIGTERM exit after %s; %d requests, %d record writes; faults: %v; busiest second across all runs: %d record calls, %d throttled by the fake; daemon log:%s",
		changes, stopped.Round(time.Millisecond), len(reqs), len(writeRequests(reqs)), faultCounts(writeRequests(reqs)),
		feishufake.MaxPerWindow(recordCalls(reqs), time.Second), len(unsolicitedThrottles(reqs)), logSummary(string(log)))
}

// writer keeps changing the source from its own goroutine and connection.
type writer struct {
	quit chan struct{}
	done chan struct{}
	once sync.Once
	runs int   // set before done is closed
	err  error // set before done is closed
}

// writeFor bounds a writer that is never stopped, and writeSteps the number
// of its changes.
const (
	writeFor   = 3 * time.Minute
	writeSteps = 50_000
)

func startWriting(t *testing.T, dsn string, seed uint64, firstID int64) *writer {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	require.NoError(t, err)
	wr := &writer{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(wr.done)
		defer conn.Close(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), writeFor)
		defer cancel()
		w := newWorkload(conn, seed, firstID)
		defer func() { wr.runs = w.runs }()
		for range writeSteps {
			select {
			case <-wr.quit:
				return
			case <-ctx.Done():
				return
			default:
			}
			if err := w.run(ctx, 1, 10*time.Millisecond); err != nil {
				if ctx.Err() == nil {
					wr.err = err
				}
				return
			}
		}
	}()
	t.Cleanup(func() { wr.stop(t) })
	return wr
}

// stop ends the writes and returns how many changes were made.
func (wr *writer) stop(t *testing.T) int {
	t.Helper()
	wr.once.Do(func() { close(wr.quit) })
	select {
	case <-wr.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the source writer did not stop within 30s")
	}
	require.NoError(t, wr.err)
	return wr.runs
}

// buildDaemon builds cmd/replicator from the module root, with the race
// detector when the tests have it.
func buildDaemon(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	require.NoError(t, err)
	gomod := strings.TrimSpace(string(out))
	require.NotEmpty(t, gomod, "not inside a module")
	bin := filepath.Join(t.TempDir(), "replicator")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/replicator")...)
	cmd.Dir = filepath.Dir(gomod)
	start := time.Now()
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	t.Logf("built the daemon in %s", time.Since(start).Round(time.Millisecond))
	return bin
}

// proc is a daemon subprocess.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // from Wait, set before done is closed
}

// startDaemon runs `replicator run --config cfgPath`, its output appended
// to logPath under a header naming the run. The process is killed when the
// test ends, and by the kernel if the test binary dies first.
func startDaemon(t *testing.T, bin, cfgPath string, env []string, logPath, label string) *proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	fmt.Fprintf(f, "=== %s, started %s\n", label, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		defer f.Close()
		// Pdeathsig fires when the thread that forked the child exits, not
		// the process; holding this goroutine to its thread for the child's
		// life keeps the runtime from retiring that thread under it.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	require.NoError(t, <-started)
	t.Cleanup(func() {
		if err := p.kill(10 * time.Second); err != nil {
			t.Error(err)
		}
	})
	return p
}

// exited returns an error once the process has exited, nil while it runs.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("the daemon exited: %v", p.err)
	default:
		return nil
	}
}

// kill sends SIGKILL unless the process is gone, and waits for it.
func (p *proc) kill(bound time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	// An error means the process is already gone, which done shows.
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return nil
	case <-time.After(bound):
		return fmt.Errorf("daemon (pid %d) still running %s after SIGKILL", p.cmd.Process.Pid, bound)
	}
}
