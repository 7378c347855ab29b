package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
)

// TestFeishuSIGTERMWithTargetDown runs the built binary while Feishu fails
// every record write (5xx, or no answer within the request timeout) and the
// reader is held back by a full byte budget: SIGTERM must still end it with
// exit code 0, the slot must not pass the changes Feishu never took, and a
// restart once Feishu is back must bring the table to the source's state.
func TestFeishuSIGTERMWithTargetDown(t *testing.T) {
	ctx := context.Background()
	bin := buildDaemon(t)
	src := newDatabase(t)
	db := src.db
	seedRows(t, db, 100)
	fake := newFake(t, feishufake.Options{SlowDelay: 3 * time.Second, Seed: 3})

	dir := t.TempDir()
	const shutdown = 3 * time.Second
	stateDir := filepath.Join(dir, "state")
	cfgPath := filepath.Join(dir, "replicator.yaml")
	yaml := strings.Replace(configYAML(src, stateDir, fake.URL(), tokenVar, 50, shutdown),
		"  shutdown_timeout:", "  max_in_flight_bytes: 64KiB\n  batch_bytes: 16KiB\n  shutdown_timeout:", 1)
	require.NoError(t, os.WriteFile(cfgPath, []byte(yaml), 0o600))
	env := append(os.Environ(), tokenVar+"="+fake.AccessToken())
	logPath := filepath.Join(dir, "daemon.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("daemon log (end):\n%s", tail(string(b), 64<<10))
		}
	})

	p := startDaemon(t, bin, cfgPath, env, logPath, "target goes down")
	waitMirror(t, db, fake, mirrorTimeout, p.exited)
	slotCatchesUp(t, db, src.name, 30*time.Second)

	fake.SetFaultRate(1, feishufake.FaultServerError, feishufake.FaultSlow)
	_, err := db.Exec(ctx, `INSERT INTO items (id, name) SELECT g, repeat('x', 1000) FROM generate_series(100001, 101000) g`)
	require.NoError(t, err)
	// The insert position: with synchronous_commit off the commit may not
	// be written yet, and the write position would lie before it.
	var committed string
	require.NoError(t, db.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&committed))
	failed := func() int { return len(writeRequests(fake.Requests())) }
	before := failed()
	deadline := time.Now().Add(30 * time.Second)
	for failed() < before+3 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	require.GreaterOrEqual(t, failed(), before+3, "the daemon never tried to write to the down target")

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	// A hang detector, not a timing assertion: without the fix the daemon
	// waits for the target forever.
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not exit within 30s of SIGTERM while Feishu was down")
	}
	require.Equal(t, 0, p.cmd.ProcessState.ExitCode(), "exit status after SIGTERM: %v", p.err)
	var passed bool
	require.NoError(t, db.QueryRow(ctx, "SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1", src.name, committed).Scan(&passed))
	require.False(t, passed, "the slot passed changes Feishu never confirmed")

	fake.SetFaultRate(0)
	p = startDaemon(t, bin, cfgPath, env, logPath, "target back")
	waitMirror(t, db, fake, mirrorTimeout, p.exited)
	slotCatchesUp(t, db, src.name, 30*time.Second)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not exit within 30s of SIGTERM")
	}
	require.Equal(t, 0, p.cmd.ProcessState.ExitCode(), "exit status after SIGTERM: %v", p.err)
	log, err := os.ReadFile(logPath)
	require.NoError(t, err)
	require.NotContains(t, string(log), "WARNING: DATA RACE")
	requireNoDeadLetters(t, stateDir)
}
