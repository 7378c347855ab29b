package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/config"
)

// errChecksFailed makes check exit non-zero without repeating the list.
var errChecksFailed = errors.New("some checks failed")

func newFlags(name, usage string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "replicator.yaml", "path of the YAML configuration `file`")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), usage+"\n\nFlags:")
		fs.PrintDefaults()
	}
	return fs, configPath
}

func checkCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, configPath := newFlags("check", "Usage: replicator check --config FILE\n\nChecks the configuration, the database, the slot and publication, every mapped table and every\ntarget, one line per item. Changes nothing. Exits non-zero when an item fails.", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*configPath, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stdout, "[%-4s] configuration valid: %v\n", app.CheckFail, err)
		return errChecksFailed
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	failed := false
	for _, item := range app.Check(ctx, cfg, app.Deps{Logger: quiet}) {
		line := fmt.Sprintf("[%-4s] %s", item.Status, item.Name)
		if item.Detail != "" {
			line += ": " + strings.ReplaceAll(item.Detail, "\n", "\n         ")
		}
		fmt.Fprintln(stdout, line)
		failed = failed || item.Status == app.CheckFail
	}
	if failed {
		return errChecksFailed
	}
	return nil
}

func statusCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, configPath := newFlags("status", "Usage: replicator status --config FILE [--json]\n\nShows the slot's position and lag, the saved checkpoint, snapshot progress per table, the\ndead-letter count and Feishu token expiry.", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*configPath, os.LookupEnv)
	if err != nil {
		return err
	}
	r, err := app.Status(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	s := r.Slot
	switch {
	case r.SourceError != "":
		fmt.Fprintf(stdout, "slot %s: unknown, the source does not answer: %s\n", s.Name, r.SourceError)
	case !s.Exists:
		fmt.Fprintf(stdout, "slot %s: does not exist\n", s.Name)
	default:
		fmt.Fprintf(stdout, "slot %s: confirmed %s, wal_status %s, active %t\nlag: %d bytes, %s\n", s.Name, s.Confirmed, s.WALStatus, s.Active, s.LagBytes, s.LagText())
	}
	if d := r.Daemon; d != nil && d.Phase == "reconnecting" {
		fmt.Fprintf(stdout, "daemon: reconnecting (attempt %d), last error: %s\n", d.ReconnectAttempt, d.LastError)
	} else if d != nil {
		fmt.Fprintf(stdout, "daemon: %s, acknowledged %s\n", d.Phase, d.Acknowledged)
	}
	if r.Active != nil {
		fmt.Fprintf(stdout, "active instance: %s, since %s; other instances wait as standbys\n", r.Active, r.Active.Since.Format("2006-01-02 15:04:05Z07:00"))
	} else {
		fmt.Fprintln(stdout, "active instance: none (no daemon holds the lock)")
	}
	fmt.Fprintf(stdout, "checkpoint (%s): %s\n", r.StateStore, r.Checkpoint)
	for _, t := range r.Tables {
		snap := fmt.Sprintf("snapshot in progress, %d rows copied", t.SnapshotRows)
		if t.SnapshotDone {
			snap = fmt.Sprintf("snapshot done (%d rows)", t.SnapshotRows)
		}
		if t.Resync != "" {
			snap = t.Resync
		}
		fmt.Fprintf(stdout, "table %s -> %s/%s: %s\n", t.Source, t.Target, t.Table, snap)
	}
	fmt.Fprintf(stdout, "dead letters: %d\n", r.DeadLetters)
	for _, tok := range r.Tokens {
		fmt.Fprintf(stdout, "target %s: access token expires %s, refresh token expires %s\n", tok.Target, tok.AccessExpires.Format("2006-01-02 15:04:05Z07:00"), tok.RefreshExpires.Format("2006-01-02 15:04:05Z07:00"))
	}
	for _, p := range r.Problems {
		fmt.Fprintf(stdout, "problem: %s\n", p)
	}
	return nil
}

func teardownCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, configPath := newFlags("teardown", "Usage: replicator teardown --config FILE --yes\n\nDrops the replication slot and the publication, so PostgreSQL stops keeping WAL for them.\nThe next run creates them again and copies every table anew (a full resync).", stderr)
	yes := fs.Bool("yes", false, "really drop the slot and the publication")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*yes {
		return errors.New("teardown drops the slot and the publication: pass --yes to confirm")
	}
	cfg, err := config.Load(*configPath, os.LookupEnv)
	if err != nil {
		return err
	}
	done, err := app.Teardown(ctx, cfg)
	for _, d := range done {
		fmt.Fprintln(stdout, d)
	}
	return err
}
