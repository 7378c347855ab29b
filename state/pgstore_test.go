package state

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/internal/pgtest"
)

func TestTableStore(t *testing.T) {
	c := pgtest.Start(t)
	t.Run("shared", func(t *testing.T) { testTableShared(t, c.NewDatabase(t)) })
	t.Run("create", func(t *testing.T) { testEnsureTableSaysHowToCreateIt(t, c.NewDatabase(t)) })
}

// The table store keeps what the directory keeps, per slot, and a store
// opened anew (another instance) reads what the last save wrote.
func testTableShared(t *testing.T, dsn string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var mu sync.Mutex
	use := func(ctx context.Context, f func(context.Context, *pgx.Conn) error) error {
		mu.Lock()
		defer mu.Unlock()
		return f(ctx, conn)
	}
	name := pgx.Identifier{"replicator", "state"}
	require.NoError(t, EnsureTable(ctx, conn, name))
	require.NoError(t, EnsureTable(ctx, conn, name), "a second call finds the table")

	a := &Table{Name: name, Slot: "a", Instance: "one", Use: use}
	b := &Table{Name: name, Slot: "b", Instance: "one", Use: use}
	_, found, err := a.Load(StateFile)
	require.NoError(t, err)
	require.False(t, found)

	s, err := OpenIn(t.TempDir(), a)
	require.NoError(t, err)
	id := SlotIdentity{SystemID: "7300000000000000001", Database: "app", DatabaseOID: 16384}
	require.NoError(t, s.Bind("a", id, 0x100))
	require.NoError(t, s.SaveTable("public.t", TableProgress{Online: true, Rows: 5, LastKey: []string{"5"}, KeyColumns: []string{"id"}, Chunks: 1}))
	require.NoError(t, s.SaveCheckpoint(0x200))
	require.NoError(t, b.Save("feishu-lark.token.json", []byte(`{"refresh_token": "other slot"}`)))

	other := &Table{Name: name, Slot: "a", Instance: "two", Use: use}
	s2, err := OpenIn(t.TempDir(), other)
	require.NoError(t, err)
	require.Equal(t, replicator.LSN(0x200), s2.Checkpoint())
	require.Equal(t, &id, s2.Identity())
	require.Equal(t, TableProgress{Online: true, Rows: 5, LastKey: []string{"5"}, KeyColumns: []string{"id"}, Chunks: 1}, s2.Table("public.t"))
	_, found, err = other.Load("feishu-lark.token.json")
	require.NoError(t, err)
	require.False(t, found, "documents are per slot")

	require.NoError(t, other.Save("feishu-lark.token.json", []byte(`{"refresh_token": "r2"}`)))
	data, found, err := a.Load("feishu-lark.token.json")
	require.NoError(t, err)
	require.True(t, found)
	require.JSONEq(t, `{"refresh_token": "r2"}`, string(data))
	var by string
	require.NoError(t, conn.QueryRow(ctx, `SELECT updated_by FROM replicator.state WHERE slot = 'a' AND name = 'feishu-lark.token.json'`).Scan(&by))
	require.Equal(t, "two", by)
}

// A role that may not create the table gets the statement to run.
func testEnsureTableSaysHowToCreateIt(t *testing.T, dsn string) {
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, `CREATE ROLE plain LOGIN PASSWORD 'plain'; REVOKE CREATE ON SCHEMA public FROM PUBLIC`)
	require.NoError(t, err)
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.User, cfg.Password = "plain", "plain"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer conn.Close(ctx)
	err = EnsureTable(ctx, conn, pgx.Identifier{"replicator", "state"})
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "CREATE TABLE IF NOT EXISTS \"replicator\".\"state\""), err.Error())

	_, err = admin.Exec(ctx, `CREATE SCHEMA replicator; CREATE TABLE replicator.state (slot text, name text, data jsonb, updated_at timestamptz, updated_by text, PRIMARY KEY (slot, name));
		GRANT USAGE ON SCHEMA replicator TO plain; GRANT SELECT, INSERT, UPDATE ON replicator.state TO plain`)
	require.NoError(t, err)
	require.NoError(t, EnsureTable(ctx, conn, pgx.Identifier{"replicator", "state"}), "a table a person created is enough")
}
