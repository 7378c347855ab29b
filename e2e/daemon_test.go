package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/internal/childproc"
	"github.com/replicator-cdc/replicator/internal/testkit"
)

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

func startWriting(t *testing.T, dsn string, values palette, seed uint64, firstID int64) *writer {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	require.NoError(t, err)
	wr := &writer{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(wr.done)
		defer conn.Close(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), writeFor)
		defer cancel()
		w := newWorkload(conn, values, seed, firstID)
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
type proc struct{ *childproc.Process }

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
	started, err := childproc.Start(cmd)
	f.Close() // the child has its own descriptor
	require.NoError(t, err)
	p := &proc{started}
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
	case <-p.Done():
		return fmt.Errorf("the daemon exited: %v", p.Err())
	default:
		return nil
	}
}

// kill sends SIGKILL unless the process is gone, and waits for it.
func (p *proc) kill(bound time.Duration) error {
	select {
	case <-p.Done():
		return nil
	default:
	}
	// An error means the process is already gone, which done shows.
	_ = p.Cmd.Process.Kill()
	select {
	case <-p.Done():
		return nil
	case <-time.After(bound):
		return fmt.Errorf("daemon (pid %d) still running %s after SIGKILL", p.Cmd.Process.Pid, bound)
	}
}

// daemonConfig is the parsed configuration mirroring items into the fake,
// with state in a directory of the test's own, which it also returns.
func daemonConfig(t *testing.T, src database, fk fake, batchRows int, shutdown time.Duration) (*config.Config, string) {
	t.Helper()
	stateDir := t.TempDir()
	cfg, err := config.Parse("e2e.yaml", []byte(configYAML(src, stateDir, batchRows, shutdown, fk)), lookupSecret(fk))
	require.NoError(t, err)
	return cfg, stateDir
}

// binary is the built daemon with a configuration file mirroring items
// into the fake, the credential in its environment, and one log file for
// all its runs, whose end is shown when the test fails.
type binary struct {
	path, cfgPath, logPath, stateDir string
	env                              []string
}

// newBinary builds the daemon and writes its configuration; edit may
// change the configuration's text.
func newBinary(t *testing.T, src database, fk fake, batchRows int, shutdown time.Duration, edit func(string) string) *binary {
	t.Helper()
	dir := t.TempDir()
	b := &binary{path: buildDaemon(t), cfgPath: filepath.Join(dir, "replicator.yaml"), logPath: filepath.Join(dir, "daemon.log"), stateDir: filepath.Join(dir, "state")}
	yaml := configYAML(src, b.stateDir, batchRows, shutdown, fk)
	if edit != nil {
		yaml = edit(yaml)
	}
	require.NoError(t, os.WriteFile(b.cfgPath, []byte(yaml), 0o600))
	name, value := fk.secret()
	b.env = append(os.Environ(), name+"="+value)
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(b.logPath)
			t.Logf("daemon log (end):\n%s", testkit.Tail(string(log), 64<<10))
		}
	})
	return b
}

func (b *binary) start(t *testing.T, label string) *proc {
	t.Helper()
	return startDaemon(t, b.path, b.cfgPath, b.env, b.logPath, label)
}

// log is every run's output; a data race in any run fails the test.
func (b *binary) log(t *testing.T) string {
	t.Helper()
	log, err := os.ReadFile(b.logPath)
	require.NoError(t, err)
	require.NotContains(t, string(log), "WARNING: DATA RACE")
	return string(log)
}

// terminate sends SIGTERM and requires exit code 0 within bound, and
// returns how long the exit took. The bound detects a hang; it is not a
// timing assertion.
func (p *proc) terminate(t *testing.T, bound time.Duration) time.Duration {
	t.Helper()
	at := time.Now()
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.Done():
	case <-time.After(bound):
		t.Fatalf("the daemon did not exit within %s of SIGTERM", bound)
	}
	require.Equal(t, 0, p.Cmd.ProcessState.ExitCode(), "exit status after SIGTERM: %v", p.Err())
	return time.Since(at)
}
