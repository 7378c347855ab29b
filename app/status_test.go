package app_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/httpapi"
	"github.com/replicator-cdc/replicator/internal/testkit"
	"github.com/replicator-cdc/replicator/monitor"
)

// status must not say "daemon not streaming" while it streams: once the
// daemon is caught up PostgreSQL's flush_lag is NULL, so the lag comes from
// the daemon's own status endpoint, and without it the text says why it is
// unknown.
func TestStatusTellsLagWhileStreaming(t *testing.T) {
	e := newEnv(t, itemsSchema)
	cfg := e.config(itemsMapping)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.HTTP.Listen = ln.Addr().String()
	reg := prometheus.NewRegistry()
	mon := monitor.New(reg)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- httpapi.New(httpapi.Options{Monitor: mon, Gatherer: reg, Logger: quietLogger()}).Serve(ctx, ln)
	}()
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, cfg, app.Deps{Logger: quietLogger(), Registry: reg, Monitor: mon, Writers: writers(e)})
	}()
	defer func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, <-served)
	}()

	e.exec(`INSERT INTO items (id, name) VALUES (1, 'one')`)
	e.waitMirror("items", "items", 30*time.Second, "id")
	committed := e.currentLSN()
	testkit.Eventually(t, 15*time.Second, "acknowledgement", func() bool { return e.lsnAtLeast(e.slotFlushed(), committed) })

	r, err := app.Status(context.Background(), cfg)
	require.NoError(t, err)
	require.True(t, r.Slot.Active)
	require.NotNil(t, r.Daemon, "the daemon's status endpoint answers")
	require.Equal(t, "streaming", r.Daemon.Phase)
	require.NotNil(t, r.Slot.LagSeconds)
	require.Equal(t, "daemon", r.Slot.LagSource)
	require.NotContains(t, r.Slot.LagText(), "not streaming")

	unreachable := *cfg
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	unreachable.HTTP.Listen = closed.Addr().String()
	require.NoError(t, closed.Close())
	r, err = app.Status(context.Background(), &unreachable)
	require.NoError(t, err)
	require.True(t, r.Slot.Active)
	require.Nil(t, r.Daemon)
	require.NotContains(t, r.Slot.LagText(), "not streaming", "the slot is in use: %s", r.Slot.LagText())
	t.Logf("without the daemon's endpoint: lag %s", r.Slot.LagText())
}
