package monitor

import "github.com/prometheus/client_golang/prometheus"

func newReconnects() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{
		Name: "replicator_source_reconnects_total",
		Help: "Attempts to connect to PostgreSQL again after a lost or refused connection, at start-up or while running.",
	})
}

// Reconnecting records that attempt (1 for the first in a row) failed with
// err and the daemon waits to connect again: not ready meanwhile.
func (m *Monitor) Reconnecting(attempt int, err error) {
	m.Phase("reconnecting")
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempt = attempt
	m.reconns++
	m.lastErr = err.Error()
	m.reconnects.Inc()
}
