// Command replicator mirrors PostgreSQL tables into Feishu aPaaS and GPTBots
// tables. main only turns arguments and signals into a context and a call.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"run", "mirror the configured tables until stopped", runCommand},
		{"check", "check the configuration, database, tables and targets", checkCommand},
		{"status", "show the slot's lag, snapshot progress, dead letters and tokens", statusCommand},
		{"teardown", "drop the replication slot and publication", teardownCommand},
		{"resync", "copy tables again at the next start (after a TRUNCATE, or a moved slot)", resyncCommand},
		{"accept-slot", "follow a moved or re-created slot from where it is, giving up the gap", acceptSlotCommand},
		{"verify", "compare the targets with the source; --repair makes them equal", verifyCommand},
		{"feishu-login", "authorize a Feishu target in a browser and store its tokens", feishuLoginCommand},
	}
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		ctx, stop := signalContext(stderr)
		defer stop()
		err := c.run(ctx, args[1:], stdout, stderr)
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if ee, ok := errors.AsType[*exitError](err); ok {
			if ee.err != nil {
				fmt.Fprintf(stderr, "replicator %s: %v\n", c.name, ee.err)
			}
			return ee.code
		}
		if errors.Is(err, errChecksFailed) {
			return 1
		}
		if err != nil {
			fmt.Fprintf(stderr, "replicator %s: %v\n", c.name, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "replicator: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: replicator <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'replicator <command> --help' for a command's flags.")
}

// signalContext ends the context on the first SIGINT or SIGTERM, so that
// the daemon drains and stops; a second signal exits at once.
func signalContext(stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-signals:
		case <-done:
			return
		}
		fmt.Fprintln(stderr, "replicator: stopping (send the signal again to exit at once)")
		cancel()
		select {
		case <-signals:
			fmt.Fprintln(stderr, "replicator: exiting at once")
			os.Exit(130)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(signals)
		close(done)
		cancel()
	}
}
