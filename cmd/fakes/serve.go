package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/replicator-cdc/replicator/state"
	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

// shutdownTimeout bounds how long a dump request in progress may delay the
// exit.
const shutdownTimeout = 5 * time.Second

// serve runs the fakes until ctx ends.
func serve(ctx context.Context, tablesPath, dumpListen, out string, stdout, stderr io.Writer) error {
	tables, err := readTables(tablesPath)
	if err != nil {
		return err
	}
	if err := checkLoopback(dumpListen); err != nil {
		return err
	}
	if out != "" {
		// A reader waiting for the file must never see the previous run's
		// URLs, which point at servers that are gone.
		if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}

	feishu := feishufake.New(feishufake.Options{WorkspaceID: tables.Feishu.WorkspaceID})
	defer feishu.Close()
	gptbots := gptbotsfake.New(gptbotsfake.Options{})
	defer gptbots.Close()
	for name, cols := range tables.Feishu.Tables {
		fake := make([]feishufake.Column, len(cols))
		for i, c := range cols {
			fake[i] = c.fake()
		}
		if err := feishu.AddTable(name, fake); err != nil {
			return err
		}
	}
	for id, fields := range tables.GPTBots.Tables {
		fake := make([]gptbotsfake.Field, len(fields))
		for i, f := range fields {
			fake[i] = f.fake()
		}
		if err := gptbots.AddTable(id, fake); err != nil {
			return err
		}
	}

	listener, err := net.Listen("tcp", dumpListen)
	if err != nil {
		return fmt.Errorf("dump endpoint: %w", err)
	}
	dump := &http.Server{Handler: dumpHandler(tables, feishu, gptbots), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- dump.Serve(listener) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		_ = dump.Shutdown(sctx)
	}()

	feishuOpts := feishu.Options()
	info := []string{
		"FEISHU_BASE_URL=" + feishu.URL(),
		"FEISHU_WORKSPACE_ID=" + feishuOpts.WorkspaceID,
		"FEISHU_USER_ACCESS_TOKEN=" + feishu.AccessToken(),
		// For trying the oauth configuration instead of a fixed token.
		"FEISHU_APP_ID=" + feishuOpts.AppID,
		"FEISHU_APP_SECRET=" + feishuOpts.AppSecret,
		"FEISHU_REFRESH_TOKEN=" + feishu.RefreshToken(),
		"GPTBOTS_BASE_URL=" + gptbots.URL(),
		"GPTBOTS_API_KEY=" + gptbots.Options().APIKey,
		"FAKES_DUMP_URL=http://" + listener.Addr().String() + "/_dump",
	}
	text := strings.Join(info, "\n") + "\n"
	if out == "" {
		if _, err := io.WriteString(stdout, text); err != nil {
			return err
		}
	} else {
		// Written whole and renamed into place, so that a reader never
		// sees half of it.
		if err := state.WriteFileAtomic(out, []byte(text), 0o600); err != nil {
			return err
		}
		defer os.Remove(out)
		fmt.Fprintf(stderr, "fakes: URLs and credentials written to %s\n", filepath.Clean(out))
	}
	fmt.Fprintln(stderr, "fakes: serving; stop with SIGINT or SIGTERM")

	select {
	case <-ctx.Done():
		fmt.Fprintln(stderr, "fakes: stopping")
		return nil
	case err := <-served:
		return fmt.Errorf("dump endpoint: %w", err)
	}
}

// checkLoopback keeps the fakes, which accept well-known credentials, off
// every network interface but loopback.
func checkLoopback(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("-dump-listen %q: %w", hostport, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-dump-listen %q: use a loopback address such as 127.0.0.1", hostport)
	}
	return nil
}

// dumpHandler answers a declared table's rows as the fake stores them.
func dumpHandler(tables *tablesFile, feishu *feishufake.Server, gptbots *gptbotsfake.Server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_dump/feishu/{table}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("table")
		if _, ok := tables.Feishu.Tables[name]; !ok {
			http.Error(w, fmt.Sprintf("no feishu table %q", name), http.StatusNotFound)
			return
		}
		writeRows(w, feishu.Rows(name))
	})
	mux.HandleFunc("GET /_dump/gptbots/{table}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("table")
		if _, ok := tables.GPTBots.Tables[id]; !ok {
			http.Error(w, fmt.Sprintf("no gptbots table %q", id), http.StatusNotFound)
			return
		}
		writeRows(w, gptbots.Rows(id))
	})
	return mux
}

func writeRows(w http.ResponseWriter, rows []map[string]any) {
	if rows == nil {
		// An empty table is [], not null.
		rows = []map[string]any{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(rows)
}
