package state_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/state"
)

var spec = replicator.TableSpec{Source: "public.items", Table: "items", Key: []string{"id"}}

func readLetters(t *testing.T, path string) []state.DeadLetter {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []state.DeadLetter
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l state.DeadLetter
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "line %s", sc.Text())
		out = append(out, l)
	}
	require.NoError(t, sc.Err())
	return out
}

func text(s string) replicator.Value {
	return replicator.Value{Kind: replicator.KindText, Raw: []byte(s)}
}

// A dead letter quotes a short prefix of each value and of the reason,
// never a whole large value, and says how long each cut value was.
func TestDeadLettersQuotePrefixes(t *testing.T) {
	dir := t.TempDir()
	d := state.OpenDeadLetters(dir, 64<<20)
	huge := strings.Repeat("é", 1<<19) // 1 MiB of two-byte characters
	rec := replicator.Record{
		Op:     replicator.OpUpsert,
		Key:    []replicator.Field{{Name: "id", Value: replicator.Value{Kind: replicator.KindInt, Raw: []byte("7")}}},
		Fields: []replicator.Field{{Name: "id", Value: replicator.Value{Kind: replicator.KindInt, Raw: []byte("7")}}, {Name: "body", Value: text(huge)}},
		LSN:    0x16B3748,
	}
	require.NoError(t, d.Write("mem", spec, []replicator.Rejection{
		{Record: rec, Reason: "refused: " + huge},
		{Record: rec, Column: "body", Value: []byte(huge), Reason: "column body: cannot encode"},
	}))
	info, err := os.Stat(d.Path())
	require.NoError(t, err)
	require.Less(t, info.Size(), int64(4096), "two dead letters of a 1 MiB value")

	letters := readLetters(t, d.Path())
	require.Len(t, letters, 2)
	whole, value := letters[0], letters[1]
	require.Equal(t, "", whole.Column)
	require.JSONEq(t, "7", string(whole.Key["id"]))
	var prefix string
	require.NoError(t, json.Unmarshal(whole.Row["body"], &prefix))
	require.True(t, strings.HasPrefix(huge, prefix) && len(prefix) > 200 && len(prefix) <= state.MaxQuotedBytes, "prefix of %d bytes", len(prefix))
	require.Equal(t, map[string]int{"row.body": len(huge)}, whole.Truncated)
	require.Less(t, len(whole.Error), 1100)
	require.Contains(t, whole.Error, "bytes)")
	require.Equal(t, "0/16B3748", whole.LSN)

	require.Equal(t, "body", value.Column)
	require.Nil(t, value.Row, "a refused value's record landed: its row is not repeated")
	require.NoError(t, json.Unmarshal(value.Value, &prefix))
	require.True(t, strings.HasPrefix(huge, prefix) && len(prefix) <= state.MaxQuotedBytes)
	require.Equal(t, map[string]int{"value": len(huge)}, value.Truncated)
	require.Equal(t, 2, d.Written())
}

// The file is rotated before a write would take it past its cap; one
// older file is kept, and every line stays whole.
func TestDeadLettersRotate(t *testing.T) {
	dir := t.TempDir()
	const maxBytes = 4096
	d := state.OpenDeadLetters(dir, maxBytes)
	rotated := filepath.Join(dir, state.RotatedDeadLetterFile)
	write := func(id string) {
		t.Helper()
		rec := replicator.Record{Op: replicator.OpDelete, Key: []replicator.Field{{Name: "id", Value: text(id)}}}
		require.NoError(t, d.Write("mem", spec, []replicator.Rejection{{Record: rec, Reason: strings.Repeat("r", 300)}}))
	}
	n := 0
	for ; n < 200; n++ {
		write(strings.Repeat("k", 10) + string(rune('a'+n%26)))
		if _, err := os.Stat(rotated); err == nil {
			break
		}
	}
	require.Less(t, n, 200, "the file was never rotated")
	first := readLetters(t, rotated)
	require.Len(t, first, n, "the rotated file holds every line written before the rotation")
	require.Len(t, readLetters(t, d.Path()), 1)

	for range 100 {
		write("more")
	}
	for _, p := range []string{d.Path(), rotated} {
		info, err := os.Stat(p)
		require.NoError(t, err)
		require.LessOrEqual(t, info.Size(), int64(maxBytes), "%s grew past the cap", p)
		readLetters(t, p)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "one current and one rotated file, nothing else")
}
