package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// 'replicator run' sets the soft memory limit to max_in_flight_bytes plus
// 32 MiB of headroom, unless GOMEMLIMIT sets one. It does so first thing:
// here the run stops at once, on an http.listen address that is taken,
// before it reaches PostgreSQL.
func TestRunAppliesTheSoftMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	taken, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { taken.Close() })
	dir := t.TempDir()
	path := filepath.Join(dir, "replicator.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`source:
  dsn: postgres://u@127.0.0.1:1/app
state:
  dir: `+dir+`
pipeline:
  max_in_flight_bytes: 48MiB
http:
  listen: `+taken.Addr().String()+`
targets:
  bots:
    type: gptbots
    api_key: key
mappings:
  - {source: public.t, target: bots, table: tbl}
`), 0o600))
	run := func() {
		t.Helper()
		var stdout, stderr bytes.Buffer
		require.Equal(t, 1, realMain([]string{"run", "--config", path}, &stdout, &stderr))
		require.Contains(t, stderr.String(), "http.listen")
	}

	t.Run("GOMEMLIMIT unset", func(t *testing.T) {
		t.Setenv("GOMEMLIMIT", "")
		require.NoError(t, os.Unsetenv("GOMEMLIMIT"))
		debug.SetMemoryLimit(1 << 40)
		run()
		require.Equal(t, int64(48<<20+32<<20), debug.SetMemoryLimit(-1))
	})
	t.Run("GOMEMLIMIT set", func(t *testing.T) {
		// As if the runtime had applied GOMEMLIMIT at start: run must
		// leave the limit as it is.
		t.Setenv("GOMEMLIMIT", "1TiB")
		debug.SetMemoryLimit(1 << 40)
		run()
		require.Equal(t, int64(1<<40), debug.SetMemoryLimit(-1))
	})
}
