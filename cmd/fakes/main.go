// Command fakes serves the fake Feishu aPaaS and GPTBots APIs
// (targets/feishu/feishufake, targets/gptbots/gptbotsfake) as a local
// process, so that the replicator binary can be run end to end without
// credentials or network access: by the demo, or by hand.
//
// It creates the tables a file declares, then writes what a client needs
// (base URLs, a Feishu user access token, the GPTBots API key, the dump URL)
// as NAME=value lines, to stdout or to the file -out names. Everything
// listens on loopback only. GET <dump URL>/feishu/<table> and
// <dump URL>/gptbots/<table id> answer a table's rows as a JSON array, as
// the fakes store them. SIGINT or SIGTERM stops it.
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

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fakes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tablesPath := fs.String("tables", "", "YAML or JSON `file` declaring the tables to create (required)")
	out := fs.String("out", "", "write the URLs and credentials to this `file` instead of stdout; it appears complete once everything listens, and is removed on exit")
	dumpListen := fs.String("dump-listen", "127.0.0.1:0", "loopback host:port of the /_dump endpoint (port 0 picks a free one)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: fakes --tables FILE [--out FILE]\n\nServes fake Feishu aPaaS and GPTBots APIs on loopback ports until SIGINT or SIGTERM.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *tablesPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, *tablesPath, *dumpListen, *out, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "fakes: %v\n", err)
		return 1
	}
	return 0
}
