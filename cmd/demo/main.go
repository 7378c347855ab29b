// Command demo shows the replicator end to end on one machine, without
// credentials or network access: it starts a throwaway PostgreSQL
// (internal/pgtest), creates and fills two tables, starts the fake Feishu
// and GPTBots APIs (cmd/fakes) and `replicator run` as processes, waits for
// the snapshot and then for a few changes to land, prints the mirrored rows
// beside the source rows, and stops and removes everything it started —
// on every path, failures and Ctrl-C included. `make demo` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicator-cdc/replicator/internal/pgtest"
	"github.com/replicator-cdc/replicator/state"
)

const (
	modulePath = "github.com/replicator-cdc/replicator"
	// fakesReady bounds the wait for the fakes to listen, which takes
	// milliseconds once the binary is built.
	fakesReady = 30 * time.Second
	// fakesStop bounds the fakes' exit after SIGTERM.
	fakesStop = 10 * time.Second
	// buildTimeout bounds each go build; a cold build of the replicator
	// takes well under a minute.
	buildTimeout = 5 * time.Minute
	pollInterval = 200 * time.Millisecond
)

type options struct {
	goCmd      string
	replicator string
	fakes      string
	wait       time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.goCmd, "go", "go", "the go `command` that builds the binaries")
	flag.StringVar(&o.replicator, "replicator", "", "replicator `binary` to run; built from this module when empty")
	flag.StringVar(&o.fakes, "fakes", "", "fakes `binary` to run; built from this module when empty")
	flag.DurationVar(&o.wait, "wait", 90*time.Second, "longest wait for the snapshot, and then for the changes, to land")
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	// The first signal stops the demo and cleans up; the children have
	// their own process groups, so a Ctrl-C reaches them through the demo.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o, os.Stdout)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("interrupted: %w", err)
	}
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	tmp, err := os.MkdirTemp("", "replicator-demo-")
	if err != nil {
		return err
	}
	defer func() {
		if err := os.RemoveAll(tmp); err != nil {
			fmt.Fprintf(os.Stderr, "demo: remove %s: %v\n", tmp, err)
		}
	}()

	replicatorBin, fakesBin := o.replicator, o.fakes
	for _, b := range []struct {
		path *string
		pkg  string
	}{{&replicatorBin, "/cmd/replicator"}, {&fakesBin, "/cmd/fakes"}} {
		if *b.path != "" {
			continue
		}
		*b.path = filepath.Join(tmp, "bin", filepath.Base(b.pkg))
		step(out, "Building %s", "."+b.pkg)
		if err := build(ctx, o.goCmd, *b.path, modulePath+b.pkg); err != nil {
			return err
		}
	}

	step(out, "Starting a throwaway PostgreSQL")
	// The demo always starts its own server: it creates a role, a slot
	// and a publication, which have no business on a server pgtest's
	// environment variable may point at.
	os.Unsetenv(pgtest.EnvDSN)
	cluster, err := pgtest.Launch(ctx)
	if err != nil {
		return err
	}
	defer cluster.Stop()
	db, port, password, err := setUpSource(ctx, cluster)
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	var dataDir string
	if err := db.QueryRow(ctx, "SHOW data_directory").Scan(&dataDir); err != nil {
		return err
	}
	fmt.Fprintf(out, "PostgreSQL (data in %s) listens on 127.0.0.1:%s.\nDatabase demo has tables customers and tickets, owned by role replicator (REPLICATION).\n", dataDir, port)

	step(out, "Starting the fake Feishu and GPTBots APIs (cmd/fakes)")
	fakeTables := filepath.Join(tmp, "fake-tables.yaml")
	if err := os.WriteFile(fakeTables, []byte(fakeTablesYAML), 0o600); err != nil {
		return err
	}
	fakesEnv := filepath.Join(tmp, "fakes.env")
	fakes, err := startChild("fakes", filepath.Join(tmp, "fakes.log"), os.Environ(), fakesBin, "-tables", fakeTables, "-out", fakesEnv)
	if err != nil {
		return err
	}
	defer stopOnExit(fakes, fakesStop)
	fakeVars, err := waitForFile(ctx, fakesEnv, fakes)
	if err != nil {
		return err
	}
	dumpURL := lookup(fakeVars, "FAKES_DUMP_URL")
	fmt.Fprintf(out, "Feishu at %s, GPTBots at %s, rows readable at %s/{feishu,gptbots}/TABLE\n",
		lookup(fakeVars, "FEISHU_BASE_URL"), lookup(fakeVars, "GPTBOTS_BASE_URL"), dumpURL)

	httpListen, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	stateDir := filepath.Join(tmp, "state")
	configPath := filepath.Join(tmp, "replicator.yaml")
	configText := fmt.Sprintf(configTemplate, port, stateDir, shutdownTimeout, httpListen)
	if err := os.WriteFile(configPath, []byte(configText), 0o600); err != nil {
		return err
	}
	step(out, "Starting replicator run --config %s", configPath)
	fmt.Fprintln(out, "with PGPASSWORD, FEISHU_* and GPTBOTS_* in its environment and this configuration:")
	fmt.Fprintln(out)
	fmt.Fprint(out, indent(configText))
	// Later entries win, so these replace any the caller has set.
	env := append(append(os.Environ(), fakeVars...), "PGPASSWORD="+password)
	repl, err := startChild("replicator", filepath.Join(tmp, "replicator.log"), env, replicatorBin, "run", "--config", configPath)
	if err != nil {
		return err
	}
	defer stopOnExit(repl, shutdownTimeout+stopSlack)

	step(out, "Waiting for the initial snapshot to land")
	states, took, err := waitForMirrors(ctx, db, dumpURL, repl, o.wait)
	if err != nil {
		return fmt.Errorf("the snapshot did not land: %w", err)
	}
	fmt.Fprintf(out, "Every row landed after %s:\n\n", took.Round(10*time.Millisecond))
	printMirrors(out, states)

	step(out, "Changing the source")
	for _, c := range changes {
		if err := apply(ctx, db, c); err != nil {
			return err
		}
		fmt.Fprintf(out, "-- %s\n%s;\n", c.what, strings.Join(c.sql, ";\n"))
	}
	step(out, "Waiting for the changes to land")
	states, took, err = waitForMirrors(ctx, db, dumpURL, repl, o.wait)
	if err != nil {
		return fmt.Errorf("the changes did not land: %w", err)
	}
	fmt.Fprintf(out, "Every change landed after %s:\n\n", took.Round(10*time.Millisecond))
	printMirrors(out, states)

	step(out, "Stopping replicator with SIGTERM")
	start := time.Now()
	if err := repl.stop(shutdownTimeout + stopSlack); err != nil {
		return fmt.Errorf("%w; the end of its log:\n%s", err, repl.logTail())
	}
	fmt.Fprintf(out, "It drained and exited with status 0 after %s.\n", time.Since(start).Round(time.Millisecond))
	if err := checkDeadLetters(stateDir); err != nil {
		return err
	}
	if err := fakes.stop(fakesStop); err != nil {
		return err
	}
	cluster.Stop()
	fmt.Fprintf(out, "Stopped the fakes and PostgreSQL; removing %s.\n", tmp)
	return nil
}

func step(out io.Writer, format string, args ...any) {
	fmt.Fprintf(out, "\n==> "+format+"\n", args...)
}

func indent(text string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(text, "\n"), "\n", "\n    ") + "\n"
}

func build(ctx context.Context, goCmd, output, pkg string) error {
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", output, pkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s build %s: %w", goCmd, pkg, err)
	}
	return nil
}

// stopOnExit stops a child still running when run returns early; on the
// normal path it has been stopped already, and its outcome checked.
func stopOnExit(c *child, grace time.Duration) {
	if c.exited() {
		return
	}
	if err := c.stop(grace); err != nil {
		fmt.Fprintf(os.Stderr, "demo: cleaning up: %v\n", err)
	}
}

// setUpSource creates the demo database, the replicator role and the
// tables. It returns a superuser connection to the database (in UTC, so
// that timestamps read back comparably), the server's port and the role's
// password.
func setUpSource(ctx context.Context, cluster *pgtest.Cluster) (db *pgx.Conn, port, password string, err error) {
	superDSN, err := cluster.CreateDatabase(ctx, "demo")
	if err != nil {
		return nil, "", "", err
	}
	roleDSN, err := cluster.CreateRole(ctx, "replicator", true)
	if err != nil {
		return nil, "", "", err
	}
	u, err := url.Parse(roleDSN)
	if err != nil {
		return nil, "", "", errors.New("the role's connection URL does not parse")
	}
	password, _ = u.User.Password()
	db, err = pgx.Connect(ctx, superDSN)
	if err != nil {
		return nil, "", "", err
	}
	if _, err := db.Exec(ctx, schemaSQL+"SET TimeZone = 'UTC';"); err != nil {
		db.Close(context.Background())
		return nil, "", "", fmt.Errorf("create the demo tables: %w", err)
	}
	return db, u.Port(), password, nil
}

// waitForFile waits for the fakes to write their URLs and credentials, and
// returns them as NAME=value lines.
func waitForFile(ctx context.Context, path string, c *child) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, fakesReady)
	defer cancel()
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			return strings.Fields(string(data)), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		select {
		case <-c.Done():
			return nil, c.exitError()
		case <-ctx.Done():
			return nil, fmt.Errorf("%s did not write %s within %s: %w; the end of its log:\n%s", c.name, path, fakesReady, ctx.Err(), c.logTail())
		case <-time.After(pollInterval / 4):
		}
	}
}

func lookup(vars []string, name string) string {
	for _, v := range vars {
		if value, ok := strings.CutPrefix(v, name+"="); ok {
			return value
		}
	}
	return ""
}

// freeLoopbackAddr picks a free port for the replicator's metrics endpoint,
// so that the demo never collides with a replicator already on 9188.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func apply(ctx context.Context, db *pgx.Conn, c change) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		for _, sql := range c.sql {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("%s: %w", sql, err)
			}
		}
		return nil
	})
}

// waitForMirrors polls until every target table mirrors its source table,
// and fails early when the replicator exits.
func waitForMirrors(ctx context.Context, db *pgx.Conn, dumpURL string, repl *child, limit time.Duration) ([]*sides, time.Duration, error) {
	start := time.Now()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		states := make([]*sides, len(mirrors))
		var problems []string
		for i, m := range mirrors {
			st, err := m.read(ctx, db, dumpURL)
			if err != nil {
				return nil, 0, err
			}
			states[i] = st
			problems = append(problems, m.problems(st)...)
		}
		if len(problems) == 0 {
			return states, time.Since(start), nil
		}
		select {
		case <-repl.Done():
			return nil, 0, repl.exitError()
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-deadline.C:
			return nil, 0, fmt.Errorf("after %s the targets still differ from the source:\n  %s\nthe end of the replicator's log:\n%s",
				limit, strings.Join(problems, "\n  "), repl.logTail())
		case <-time.After(pollInterval):
		}
	}
}

func printMirrors(out io.Writer, states []*sides) {
	for i, m := range mirrors {
		if i > 0 {
			fmt.Fprintln(out)
		}
		m.print(out, states[i])
	}
}

// checkDeadLetters fails the demo when a row was rejected: every demo row
// is valid, so a dead letter is a bug worth seeing.
func checkDeadLetters(stateDir string) error {
	data, err := os.ReadFile(filepath.Join(stateDir, state.DeadLetterFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("the replicator wrote dead letters:\n%s", data)
}
