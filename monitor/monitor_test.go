package monitor

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// A stream that waits for the server too long is stalled, not streaming;
// so is one that stops reporting (stuck elsewhere on a dead connection).
// It streams again once it hears from the server, and a new phase forgets it.
func TestStalledStreamIsNotStreaming(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := New(prometheus.NewRegistry())
	m.now = func() time.Time { return now }
	m.Phase("streaming")
	m.Listening(0, 30*time.Second)
	require.Equal(t, "streaming", m.Snapshot().Phase)
	require.Equal(t, 1.0, testutil.ToFloat64(m.streaming))

	m.Listening(40*time.Second, 30*time.Second)
	s := m.Snapshot()
	require.Equal(t, "stalled", s.Phase)
	require.Equal(t, "no message from PostgreSQL for 40s", s.Stalled)
	require.Equal(t, 0.0, testutil.ToFloat64(m.streaming))

	m.Listening(0, 30*time.Second)
	require.Equal(t, "streaming", m.Snapshot().Phase)
	now = now.Add(31 * time.Second)
	require.Equal(t, "stalled", m.Snapshot().Phase, "a stream that stopped reporting")

	m.Phase("reconnecting")
	s = m.Snapshot()
	require.Equal(t, "reconnecting", s.Phase)
	require.Empty(t, s.Stalled)
	m.Phase("streaming")
	require.Equal(t, "streaming", m.Snapshot().Phase, "a new stream is not stalled before it reports")
}
