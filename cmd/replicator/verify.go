package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/config"
)

// exitError ends the process with a status of its own; err, when set, is
// printed first.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func verifyCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, configPath := newFlags("verify", "Usage: replicator verify --config FILE [--table SCHEMA.TABLE ...] [--repair]\n\nReads every mapped target table back through its API and compares it with the source table, by key\nand by value as the writers render them, and reports missing, extra and different rows. Works beside\na running daemon: a difference is reported only when it persists after the daemon confirmed the\nsource's state (docs/production.md, \"Verifying a mirror\"). --repair then upserts and deletes what\nmakes the target equal. Exit status: 0 when the mirror is equal (found so, or repaired and checked again), 1 when it is not,\n2 when verify itself failed.", stderr)
	var tables tableList
	fs.Var(&tables, "table", "a mapped source `table` to verify (repeatable; default every table)")
	repair := fs.Bool("repair", false, "write what makes the target equal to the source")
	settle := fs.Duration("settle", 10*time.Second, "how long each re-check waits at most for a running daemon to catch up")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*configPath, os.LookupEnv)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rep, err := app.Verify(ctx, cfg, app.Deps{Logger: logger}, app.VerifyOptions{Tables: tables, Repair: *repair, Settle: *settle})
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	printVerify(stdout, rep, *repair)
	if !rep.EqualNow() {
		return &exitError{code: 1}
	}
	return nil
}

func printVerify(w io.Writer, rep *app.VerifyReport, repair bool) {
	for _, t := range rep.Tables {
		verdict := "equal"
		if !t.Equal() {
			verdict = "DIFFERENT"
		}
		fmt.Fprintf(w, "%s -> %s/%s: %s (source %d rows, target %d rows): missing %d, extra %d, different %d",
			t.Source, t.Target, t.Table, verdict, t.SourceRows, t.TargetRows, t.Missing, t.Extra, t.Different)
		if t.Unsettled > 0 {
			fmt.Fprintf(w, ", changing too often to compare %d", t.Unsettled)
		}
		fmt.Fprintln(w)
		if t.Lagging && !t.Equal() {
			fmt.Fprintln(w, "  note: the daemon was not running or had not caught up within --settle; differences may be changes it has yet to write")
		}
		for _, d := range t.Examples {
			fmt.Fprintf(w, "  %s key %s", d.Kind, d.Key)
			if len(d.Columns) > 0 {
				fmt.Fprintf(w, " columns %s", strings.Join(d.Columns, ", "))
			}
			fmt.Fprintln(w)
		}
		if repair && t.Missing+t.Extra+t.Different > 0 {
			fmt.Fprintf(w, "  repaired %d rows, %d still different", t.Repaired, t.RepairLeft)
			if n := len(t.RepairRejected); n > 0 {
				fmt.Fprintf(w, "; %d refused by the target, first: %s", n, t.RepairRejected[0])
			}
			fmt.Fprintln(w)
		}
	}
}
