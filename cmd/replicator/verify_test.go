package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/app"
)

// TestVerifyErrorExitsTwo: a failure of verify itself is status 2, apart
// from 1 for a mirror that differs.
func TestVerifyErrorExitsTwo(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 2, realMain([]string{"verify", "--config", "missing.yaml"}, &stdout, &stderr))
	require.Contains(t, stderr.String(), "replicator verify: ")
	require.Equal(t, 0, realMain([]string{"verify", "--help"}, &stdout, &stderr))
	require.Contains(t, stderr.String(), "Exit status")
}

func TestPrintVerify(t *testing.T) {
	var out bytes.Buffer
	printVerify(&out, &app.VerifyReport{Tables: []app.TableReport{
		{Source: "public.a", Target: "lark", Table: "a", SourceRows: 3, TargetRows: 3},
		{Source: "public.b", Target: "bots", Table: "tbl", SourceRows: 5, TargetRows: 4, Missing: 1, Different: 1, Lagging: true,
			Examples: []app.Difference{{Kind: app.KindMissing, Key: "id=7"}, {Kind: app.KindDifferent, Key: "id=9", Columns: []string{"at", "name"}}}},
	}}, false)
	require.Equal(t, `public.a -> lark/a: equal (source 3 rows, target 3 rows): missing 0, extra 0, different 0
public.b -> bots/tbl: DIFFERENT (source 5 rows, target 4 rows): missing 1, extra 0, different 1
  note: the daemon was not running or had not caught up within --settle; differences may be changes it has yet to write
  missing key id=7
  different key id=9 columns at, name
`, out.String())
}
