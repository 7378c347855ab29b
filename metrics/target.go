// Package metrics declares the Prometheus series the daemon exports. Series
// are registered on a registry the caller injects; nothing is global.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Target holds the series every target writer updates. One Target is shared
// by all writers of a process; the target label tells them apart.
type Target struct {
	// Requests counts API calls by target, table, operation (upsert, delete,
	// schema, token) and outcome (ok, retry, rejected, table, fatal).
	Requests *prometheus.CounterVec
	// Rows counts rows confirmed by the target, by target, table and operation.
	Rows *prometheus.CounterVec
	// Errors counts failed attempts by target and reason, one vocabulary
	// for every target (the Reason constants of targets/apicall: throttled,
	// timeout, connection, server, token_expired, rejected, table...);
	// table is an answer about the table or request as a whole.
	Errors *prometheus.CounterVec
	// ThrottleWait accumulates seconds spent waiting for the rate limiter or a
	// throttling answer's reset time, by target.
	ThrottleWait *prometheus.CounterVec
	// Latency observes request durations in seconds by target and operation.
	Latency *prometheus.HistogramVec
	// BatchRows observes rows per request by target and operation.
	BatchRows *prometheus.HistogramVec
	// TableFailing is 1 while a target table fails as a whole (missing,
	// no access, schema mismatch): its writes wait, nothing is rejected.
	TableFailing *prometheus.GaugeVec
	// Down counts a target's APIs (its tables', its token endpoint) that
	// fail every request: one request at a time probes each, the others
	// wait.
	Down *prometheus.GaugeVec
}

// NewTarget creates the target series and registers them on reg.
func NewTarget(reg prometheus.Registerer) *Target {
	m := &Target{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_target_requests_total",
			Help: "Requests sent to targets, by outcome.",
		}, []string{"target", "table", "operation", "outcome"}),
		Rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_target_rows_total",
			Help: "Rows confirmed by targets.",
		}, []string{"target", "table", "operation"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_target_errors_total",
			Help: "Failed target requests by reason.",
		}, []string{"target", "reason"}),
		ThrottleWait: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_target_throttle_wait_seconds_total",
			Help: "Seconds spent waiting on rate limits and throttling answers.",
		}, []string{"target"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "replicator_target_request_duration_seconds",
			Help:    "Target request latency.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"target", "operation"}),
		BatchRows: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "replicator_target_batch_rows",
			Help:    "Rows per target request.",
			Buckets: []float64{1, 5, 10, 50, 100, 250, 500, 1000},
		}, []string{"target", "operation"}),
		TableFailing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "replicator_target_table_failing",
			Help: "1 while a target table fails as a whole; its writes are retried, never dead-lettered.",
		}, []string{"target", "table"}),
		Down: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "replicator_target_down",
			Help: "APIs of a target failing every request; one request at a time probes each while the others wait.",
		}, []string{"target"}),
	}
	reg.MustRegister(m.Requests, m.Rows, m.Errors, m.ThrottleWait, m.Latency, m.BatchRows, m.TableFailing, m.Down)
	return m
}
