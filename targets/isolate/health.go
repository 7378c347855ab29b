package isolate

import (
	"errors"
	"log/slog"
	"sync"
	"time"

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

	mu     sync.Mutex
	tables map[string]tableState
}

// tableState is a table's state and when the request that set it was
// sent: concurrent requests' answers arrive out of order, and an answer to
// a request sent before the last change is old news.
type tableState struct {
	failing bool
	sent    time.Time
}

// NewHealth reports through log, gauge (labels target, table; nil for
// none) and hook (nil for none), which is told the failure and then nil
// when the table recovers.
func NewHealth(target string, log *slog.Logger, gauge *prometheus.GaugeVec, hook func(table string, err error)) *Health {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Health{target: target, log: log, gauge: gauge, hook: hook, tables: map[string]tableState{}}
}

// Failing reports that a request sent at sent found the table failing as
// a whole, for reason.
func (h *Health) Failing(table, reason string, sent time.Time) {
	h.set(table, sent, errors.New(reason))
}

// OK reports that a write sent at sent landed.
func (h *Health) OK(table string, sent time.Time) {
	h.set(table, sent, nil)
}

// set records what the answer to a request sent at sent said, and reports a
// change. It holds h.mu throughout, so that the gauge and the hook see the
// changes in the order they happened.
func (h *Health) set(table string, sent time.Time, err error) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.tables[table]
	if sent.Before(st.sent) {
		return
	}
	failing := err != nil
	h.tables[table] = tableState{failing: failing, sent: sent}
	if st.failing == failing {
		return
	}
	gauge := 0.0
	if failing {
		gauge = 1
		h.log.Error("target table is failing as a whole; its writes wait and are retried, nothing is dead-lettered",
			"table", table, "error", err.Error())
	} else {
		h.log.Info("target table recovered; writes land again", "table", table)
	}
	if h.gauge != nil {
		h.gauge.WithLabelValues(h.target, table).Set(gauge)
	}
	if h.hook != nil {
		h.hook(table, err)
	}
}
