package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/httpapi"
	"github.com/replicator-cdc/replicator/logging"
	"github.com/replicator-cdc/replicator/monitor"
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
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(app.MemoryLimit(cfg))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	deps := app.Deps{Logger: logger, Registry: reg, Monitor: monitor.New(reg)}
	if logging.IsTerminal(stderr) {
		deps.Progress = stderr
	}
	if *dryRun {
		deps.DryRun = stdout
	}
	// Bind before starting, so that a busy port stops the daemon at once
	// rather than after a snapshot.
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http.listen %s: %w (pick another address in the configuration)", cfg.HTTP.Listen, err)
	}
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() {
		served <- httpapi.New(httpapi.Options{Monitor: deps.Monitor, Gatherer: reg, Logger: logger}).Serve(httpCtx, ln)
	}()
	runErr := app.Run(ctx, cfg, deps)
	stopHTTP()
	if err := <-served; err != nil {
		logger.Warn("http api stopped with an error", "error", err)
	}
	return runErr
}
