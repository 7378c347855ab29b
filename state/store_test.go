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
