package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/config"
)

func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "replicator.yaml", "path of the YAML configuration `file`")
	dryRun := fs.Bool("dry-run", false, "print the writes as JSON lines instead of sending them; acknowledge nothing, save no progress")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: replicator run --config FILE [--dry-run]\n\nMirrors the configured tables until SIGINT or SIGTERM, then drains in-flight writes and exits.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*configPath, os.LookupEnv)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.Log, stderr)
	deps := app.Deps{Logger: logger, Registry: prometheus.NewRegistry()}
	if *dryRun {
		deps.DryRun = stdout
	}
	return app.Run(ctx, cfg, deps)
}

// newLogger writes text to a terminal and JSON elsewhere, unless the
// configuration picks one.
func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.Format
	if format == "auto" || format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
