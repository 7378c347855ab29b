package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/logging"
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
	logger := logging.New(stderr, cfg.Log.Level, cfg.Log.Format, time.Minute)
	deps := app.Deps{Logger: logger, Registry: prometheus.NewRegistry()}
	if logging.IsTerminal(stderr) {
		deps.Progress = stderr
	}
	if *dryRun {
		deps.DryRun = stdout
	}
	return app.Run(ctx, cfg, deps)
}
