package app_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStateDirectoryFull fills the state directory's file system while the
// daemon streams: the checkpoint cannot be saved, so the daemon stops with
// the directory and what to do, and the slot was not acknowledged past the
// saved checkpoint.
func TestStateDirectoryFull(t *testing.T) {
	dir := t.TempDir()
	// A file system of its own, so that filling it is real and harms
	// nothing else; mounting needs root.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	e := newEnv(t, itemsSchema)
	e.stateDir = filepath.Join(dir, "state")
	e.exec(`INSERT INTO items (id, name) SELECT g, 'n' FROM generate_series(1, 50) g`)
	daemon := e.startStreaming(e.config(itemsMapping))
	e.waitMirror("items", "items", 60*time.Second, "id")
	fill(t, filepath.Join(dir, "filler"))
	saved := savedCheckpoint(t, e.stateDir)
	stateFault(t, e, daemon, saved, "no space left on device")
}

// TestStateDirectoryInTheWay puts a directory where the state file goes
// while the daemon streams: the same clean stop.
func TestStateDirectoryInTheWay(t *testing.T) {
	e := newEnv(t, itemsSchema)
	e.exec(`INSERT INTO items (id, name) SELECT g, 'n' FROM generate_series(1, 50) g`)
	daemon := e.startStreaming(e.config(itemsMapping))
	e.waitMirror("items", "items", 60*time.Second, "id")
	file := filepath.Join(e.stateDir, "state.json")
	kept := filepath.Join(t.TempDir(), "state.json")
	// Moved away and replaced in a loop: a save between the two steps
	// recreates the file, and the newest saved copy is what counts.
	for i := 0; ; i++ {
		require.Less(t, i, 100, "could not put a directory in the state file's place")
		require.NoError(t, os.Rename(file, kept))
		if err := os.Mkdir(file, 0o700); err == nil {
			break
		} else if !errors.Is(err, os.ErrExist) {
			require.NoError(t, err)
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(file, "in-the-way"), nil, 0o600))
	stateFault(t, e, daemon, savedCheckpoint(t, filepath.Dir(kept)), "file exists")
}

// stateFault makes changes until the daemon stops on the fault, then checks
// its message and that the slot did not move past saved.
func stateFault(t *testing.T, e *env, daemon *running, saved, cause string) {
	t.Helper()
	var err error
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; err == nil; i++ {
		require.True(t, time.Now().Before(deadline), "the daemon did not stop within 60s")
		e.exec(`INSERT INTO items (id, name) VALUES ($1, 'after the fault')`, 1000+i)
		select {
		case err = <-daemon.done:
		case <-time.After(500 * time.Millisecond):
		}
	}
	daemon.once.Do(func() { daemon.err = err })
	t.Logf("daemon stopped: %v", err)
	require.Contains(t, err.Error(), "the state could not be saved to "+e.stateDir)
	require.Contains(t, err.Error(), "free space")
	require.Contains(t, strings.ToLower(err.Error()), cause)
	flushed := e.slotFlushed()
	require.NotEmpty(t, flushed)
	require.True(t, e.lsnAtLeast(saved, flushed), "slot confirmed %s, past the saved checkpoint %s", flushed, saved)
}

func savedCheckpoint(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	require.NoError(t, err)
	var doc struct{ Checkpoint string }
	require.NoError(t, json.Unmarshal(data, &doc))
	require.NotEmpty(t, doc.Checkpoint)
	return doc.Checkpoint
}

// fill writes path until its file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	chunk := make([]byte, 4096)
	for i := 0; i < 1<<16; i++ {
		if _, err := f.Write(chunk); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			return
		}
	}
	t.Fatal("the file system did not fill up")
}
