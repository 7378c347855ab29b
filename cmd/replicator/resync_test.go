package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAcceptSlotNeedsYes(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 1, realMain([]string{"accept-slot", "--config", "missing.yaml"}, &stdout, &stderr))
	require.Contains(t, stderr.String(), "pass --yes")
}

func TestTableListSplitsAndRepeats(t *testing.T) {
	var l tableList
	require.NoError(t, l.Set("public.a,b"))
	require.NoError(t, l.Set("c"))
	require.Equal(t, tableList{"public.a", "b", "c"}, l)
}

func TestUsageListsRecoveryCommands(t *testing.T) {
	var stdout bytes.Buffer
	require.Equal(t, 0, realMain([]string{"help"}, &stdout, &stdout))
	require.Contains(t, stdout.String(), "resync")
	require.Contains(t, stdout.String(), "accept-slot")
}
