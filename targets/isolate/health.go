package isolate

import (
	"errors"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Health knows which tables of one target are failing as a whole, and
// says so once per change of state: a log line, the gauge and the hook. A
// nil *Health reports nothing.
type Health struct {
	target string
	log    *slog.Logger
	gauge  *prometheus.GaugeVec
	hook   func(table string, err error)

	mu      sync.Mutex
	failing map[string]bool
}

// NewHealth reports through log, gauge (labels target, table; nil for
// none) and hook (nil for none), which is told the failure and then nil
// when the table recovers.
func NewHealth(target string, log *slog.Logger, gauge *prometheus.GaugeVec, hook func(table string, err error)) *Health {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Health{target: target, log: log, gauge: gauge, hook: hook, failing: map[string]bool{}}
}

// Failing reports that the table failed as a whole, for reason.
func (h *Health) Failing(table, reason string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failing[table] {
		return
	}
	h.failing[table] = true
	h.log.Error("target table is failing as a whole; its writes wait and are retried, nothing is dead-lettered",
		"table", table, "error", reason)
	h.report(table, 1, errors.New(reason))
}

// OK reports that a write to the table landed.
func (h *Health) OK(table string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.failing[table] {
		return
	}
	h.failing[table] = false
	h.log.Info("target table recovered; writes land again", "table", table)
	h.report(table, 0, nil)
}

// report runs under h.mu, so that the gauge and the hook see the changes
// in the order they happened.
func (h *Health) report(table string, gauge float64, err error) {
	if h.gauge != nil {
		h.gauge.WithLabelValues(h.target, table).Set(gauge)
	}
	if h.hook != nil {
		h.hook(table, err)
	}
}
