package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/targets/feishu"
)

func feishuLoginCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("feishu-login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "replicator.yaml", "path of the YAML configuration `file`")
	target := fs.String("target", "", "`name` of the feishu target to authorize (required)")
	listen := fs.String("listen", feishu.DefaultLoginListen, "loopback `address` that receives the browser's redirect; register http://ADDRESS/callback as the app's redirect URL")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: replicator feishu-login --config FILE --target NAME\n\nPrints the authorization URL for a feishu target with oauth, receives the code on a loopback\nredirect, exchanges it for tokens and stores them in the state directory (mode 0600), where\n'replicator run' picks them up.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*configPath, os.LookupEnv)
	if err != nil {
		return err
	}
	t, ok := cfg.Targets[*target]
	if !ok || t.Feishu == nil {
		return errors.New("--target must name a feishu target of the configuration")
	}
	if !t.Feishu.UsesOAuth() {
		return fmt.Errorf("target %s has no oauth section: feishu-login needs oauth.app_id and oauth.app_secret", t.Name)
	}
	if err := os.MkdirAll(cfg.State.Dir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	fc := *t.Feishu
	fc.StateDir = cfg.State.Dir
	docs, closeDocs, err := app.SharedDocs(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDocs()
	fc.Tokens = docs
	if err := feishu.Login(ctx, fc, *listen, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Tokens for target %s are saved in %s.\n", t.Name, docs.Where(feishu.TokenName(t.Name)))
	return nil
}
