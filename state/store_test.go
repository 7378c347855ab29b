package state

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
)

// What binds the state to a slot survives a reopen; each way of letting go
// of it forgets exactly what it says.
func TestStoreSlotBinding(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	require.Nil(t, s.Identity())
	id := SlotIdentity{SystemID: "7300000000000000001", Database: "app", DatabaseOID: 16384}
	require.NoError(t, s.Bind("slot", id, 0x100))
	require.NoError(t, s.SaveTable("public.a", TableProgress{Done: true, Rows: 3, ResyncSnapshot: "5:9:7", ResyncBefore: "0/200"}))
	require.NoError(t, s.SaveTable("public.b", TableProgress{Done: true}))

	s, err = Open(dir)
	require.NoError(t, err)
	require.Equal(t, "slot", s.Slot())
	require.Equal(t, &id, s.Identity())
	require.Equal(t, replicator.LSN(0x100), s.Checkpoint())
	require.Equal(t, TableProgress{Done: true, Rows: 3, ResyncSnapshot: "5:9:7", ResyncBefore: "0/200"}, s.Table("public.a"))

	require.NoError(t, s.RequestResync("public.a"))
	require.Equal(t, TableProgress{Resync: true}, s.Table("public.a"))
	require.True(t, s.Table("public.b").Done)

	other := SlotIdentity{SystemID: "7300000000000000002", Database: "app", DatabaseOID: 16390}
	require.NoError(t, s.Rebind("slot", other, 0x500))
	require.Equal(t, replicator.LSN(0x500), s.Checkpoint())
	require.Equal(t, &other, s.Identity())
	require.True(t, s.Table("public.b").Done, "accepting a slot keeps the tables' progress")

	require.NoError(t, s.Unbind())
	s, err = Open(dir)
	require.NoError(t, err)
	require.Empty(t, s.Slot())
	require.Nil(t, s.Identity())
	require.Zero(t, s.Checkpoint())
	require.Empty(t, s.Tables())
}

// A state written before the slot's identity was recorded still loads.
func TestStoreReadsStateWithoutIdentity(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, StateFile), []byte(`{"slot":"s","checkpoint":"0/10","tables":{"public.a":{"done":true,"rows":2}}}`), 0o600))
	s, err := Open(dir)
	require.NoError(t, err)
	require.Nil(t, s.Identity())
	require.Equal(t, replicator.LSN(0x10), s.Checkpoint())
	require.Equal(t, TableProgress{Done: true, Rows: 2}, s.Table("public.a"))
}

// An unfinished online resync resumes after the key it saved, read in the
// order it was saved in; progress without one (no chunk acknowledged yet,
// or written by a daemon that did not save it) or saved for other key
// columns starts over.
func TestResumeAfter(t *testing.T) {
	saved := TableProgress{Online: true, LastKey: []string{"eu", "10"}, KeyColumns: []string{"region", "seq"}, Rows: 200, Chunks: 2}
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	require.NoError(t, s.SaveTable("public.t", saved))
	s, err = Open(dir)
	require.NoError(t, err)
	require.Equal(t, saved, s.Table("public.t"), "the resume key survives a restart")

	done := saved
	done.Done = true
	other := saved
	other.KeyColumns = []string{"seq", "region"}
	for _, c := range []struct {
		name string
		p    TableProgress
		key  []string
		want [][]byte
	}{
		{"saved", saved, []string{"region", "seq"}, [][]byte{[]byte("eu"), []byte("10")}},
		{"empty text key", TableProgress{Online: true, LastKey: []string{""}, KeyColumns: []string{"name"}}, []string{"name"}, [][]byte{{}}},
		{"no chunk yet", TableProgress{Online: true}, []string{"region", "seq"}, nil},
		{"other key columns", other, []string{"region", "seq"}, nil},
		{"done", done, []string{"region", "seq"}, nil},
		{"start-up snapshot", TableProgress{LastKey: []string{"5"}, KeyColumns: []string{"id"}}, []string{"id"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, c.p.ResumeAfter(c.key))
		})
	}

	// A daemon from before resuming saved no key.
	require.NoError(t, os.WriteFile(filepath.Join(dir, StateFile), []byte(`{"slot":"s","checkpoint":"0/10","tables":{"public.t":{"done":false,"rows":0,"online":true}}}`), 0o600))
	s, err = Open(dir)
	require.NoError(t, err)
	require.Nil(t, s.Table("public.t").ResumeAfter([]string{"id"}), "progress without a key starts over")
}
