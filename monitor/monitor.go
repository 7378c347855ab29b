// Package monitor keeps the daemon's live figures in one place: it updates
// the Prometheus series and answers snapshots for the status page, the
// readiness check and the status command.
package monitor

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// throughputSlots × throughputSlot is the window of the throughput chart.
const (
	throughputSlot  = 5 * time.Second
	throughputSlots = 60
)

// Table is one mapped table's figures.
type Table struct {
	Source string `json:"source"`
	Target string `json:"target"`
	Table  string `json:"table"`
	// Rows counts rows confirmed by the target since start, by operation.
	Upserts int64 `json:"upserts"`
	Deletes int64 `json:"deletes"`
	// Snapshot progress: rows copied and the estimate; SnapshotDone once copied.
	SnapshotRows  int64 `json:"snapshot_rows"`
	SnapshotTotal int64 `json:"snapshot_total"`
	SnapshotDone  bool  `json:"snapshot_done"`
	// Resyncing marks a copy running beside the stream (an online resync;
	// its rows are the snapshot figures); ResyncChunk is its last chunk.
	Resyncing   bool      `json:"resyncing,omitempty"`
	ResyncChunk int       `json:"resync_chunk,omitempty"`
	DeadLetters int64     `json:"dead_letters"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitempty"`
	// Failing is why the target table fails as a whole while it does: its
	// writes wait and are retried.
	Failing string `json:"failing,omitempty"`
	// Throughput holds rows per second over the last five minutes, oldest
	// first, one value per five seconds.
	Throughput []float64 `json:"throughput"`
}

// Snapshot is everything the monitor knows at one moment.
type Snapshot struct {
	Now     time.Time `json:"now"`
	Started time.Time `json:"started"`
	Phase   string    `json:"phase"` // standby, starting, snapshot, streaming, stalled, reconnecting, stopping
	// Standby says what a standby waits for, such as the instance holding the lock.
	Standby      string  `json:"standby,omitempty"`
	Acknowledged string  `json:"acknowledged"`
	LagBytes     int64   `json:"lag_bytes"`
	LagSeconds   float64 `json:"lag_seconds"`
	LastError    string  `json:"last_error,omitempty"`
	// ReconnectAttempt counts the failed attempts in a row while the phase
	// is reconnecting; Reconnects counts every reconnect since start.
	ReconnectAttempt int     `json:"reconnect_attempt,omitempty"`
	Reconnects       int64   `json:"reconnects"`
	Tables           []Table `json:"tables"`

	// Stalled says why a stream is not flowing (phase stalled).
	Stalled string `json:"stalled,omitempty"`
}

// mappingKey names a mapping: a source table fanned out to several targets
// or target tables has one row per mapping.
type mappingKey struct{ source, target, table string }

type tableState struct {
	t       Table
	buckets [throughputSlots]float64
	head    int // bucket index of headAt
	headAt  time.Time
}

// Monitor is safe for concurrent use.
type Monitor struct {
	mu      sync.Mutex
	now     func() time.Time
	started time.Time
	phase   string
	standby string
	ack     string
	lagB    int64
	lagS    float64
	lastErr string
	tables  map[mappingKey]*tableState
	attempt int
	reconns int64

	// quietSince is when the stream started waiting for the server in
	// vain; past staleAfter it is stalled (zero: not streaming yet).
	quietSince time.Time
	staleAfter time.Duration

	rows        *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	snapRows    *prometheus.GaugeVec
	snapTotal   *prometheus.GaugeVec
	lagBytes    prometheus.Gauge
	lagSeconds  prometheus.Gauge
	streaming   prometheus.GaugeFunc
	batchRows   prometheus.Histogram
	inFlight    prometheus.Gauge
	slotSafe    prometheus.Gauge
	slotLeft    prometheus.Gauge
	heartbeats  prometheus.Counter
	reconnects  prometheus.Counter
}

// New registers the pipeline's series on reg.
func New(reg prometheus.Registerer) *Monitor {
	m := &Monitor{
		now: time.Now, started: time.Now(), phase: "starting", tables: map[mappingKey]*tableState{},
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_rows_total", Help: "Rows confirmed by targets, by source table, target, target table and operation.",
		}, []string{"source", "target", "table", "operation"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replicator_dead_letters_total", Help: "Dead letters written: rejected records, and values left out of written records.",
		}, []string{"source", "target", "table"}),
		snapRows: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "replicator_snapshot_rows", Help: "Rows copied by the initial snapshot.",
		}, []string{"source"}),
		snapTotal: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "replicator_snapshot_rows_estimated", Help: "Estimated rows of the initial snapshot.",
		}, []string{"source"}),
		lagBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "replicator_lag_bytes", Help: "WAL bytes received but not yet acknowledged to PostgreSQL.",
		}),
		lagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "replicator_lag_seconds", Help: "Age of the oldest transaction not yet confirmed by every target (0 when none is pending).",
		}),
		batchRows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "replicator_batch_rows", Help: "Records per batch handed to a writer.",
			Buckets: []float64{1, 10, 50, 100, 250, 500, 1000, 5000},
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "replicator_in_flight_bytes", Help: "Bytes of records between the reader and the targets' confirmation.",
		}),
	}
	m.streaming = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "replicator_streaming", Help: "1 while the daemon streams changes (not while the stream is stalled).",
	}, m.streamingNow)
	m.slotSafe = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "replicator_slot_safe_wal_bytes", Help: "WAL bytes that may still be written before the slot is at risk of being invalidated (-1: no limit).",
	})
	m.slotLeft = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "replicator_slot_retention_left_ratio", Help: "Share of max_slot_wal_keep_size still free for the slot (1 when unlimited); below 0.2 is a warning.",
	})
	m.heartbeats = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "replicator_heartbeats_total", Help: "Heartbeat messages emitted into the WAL.",
	})
	m.reconnects = newReconnects()
	m.slotSafe.Set(-1)
	m.slotLeft.Set(1)
	reg.MustRegister(m.rows, m.deadLetters, m.snapRows, m.snapTotal, m.lagBytes, m.lagSeconds, m.streaming, m.batchRows, m.inFlight,
		m.slotSafe, m.slotLeft, m.heartbeats, m.reconnects)
	return m
}

// AddTable declares a mapped table so that its series exist from the start.
func (m *Monitor) AddTable(source, target, table string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tables[mappingKey{source, target, table}] = &tableState{t: Table{Source: source, Target: target, Table: table}, headAt: m.now().Truncate(throughputSlot)}
	for _, op := range []string{"upsert", "delete"} {
		m.rows.WithLabelValues(source, target, table, op)
	}
	m.deadLetters.WithLabelValues(source, target, table)
	m.snapRows.WithLabelValues(source)
	m.snapTotal.WithLabelValues(source)
}

// Phase records what the daemon is doing.
func (m *Monitor) Phase(phase string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.phase, m.standby = phase, ""
	m.staleAfter = 0
}

// Listening records that the stream has waited for the server in vain for
// waited so far, and that a live server is heard within staleAfter. Until
// the next call the wait is taken to go on, so a stream that stops
// reporting, stuck on a dead connection, turns stalled too. A stalled
// stream is not reported as streaming.
func (m *Monitor) Listening(waited, staleAfter time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.quietSince, m.staleAfter = m.now().Add(-waited), staleAfter
}

// stalled says how long the stream has waited in vain, when that is too long.
func (m *Monitor) stalled(now time.Time) (time.Duration, bool) {
	if m.phase != "streaming" || m.staleAfter <= 0 {
		return 0, false
	}
	waited := now.Sub(m.quietSince)
	return waited, waited > m.staleAfter
}

func (m *Monitor) streamingNow() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, stalled := m.stalled(m.now()); m.phase == "streaming" && !stalled {
		return 1
	}
	return 0
}

// Standby records that this instance waits as a standby, and for what.
func (m *Monitor) Standby(waiting string) {
	m.Phase("standby")
	m.mu.Lock()
	defer m.mu.Unlock()
	m.standby = waiting
}

// Confirmed counts rows a target table confirmed.
func (m *Monitor) Confirmed(source, target, table string, upserts, deletes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.tables[mappingKey{source, target, table}]
	if t == nil {
		return
	}
	t.t.Upserts += int64(upserts)
	t.t.Deletes += int64(deletes)
	m.rows.WithLabelValues(t.t.Source, t.t.Target, t.t.Table, "upsert").Add(float64(upserts))
	m.rows.WithLabelValues(t.t.Source, t.t.Target, t.t.Table, "delete").Add(float64(deletes))
	m.batchRows.Observe(float64(upserts + deletes))
	t.advance(m.now())
	t.buckets[t.head] += float64(upserts + deletes)
}

// DeadLettered counts lines written to the dead-letter file: rejected
// records and rejected values.
func (m *Monitor) DeadLettered(source, target, table string, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.tables[mappingKey{source, target, table}]; t != nil {
		t.t.DeadLetters += int64(n)
		m.deadLetters.WithLabelValues(t.t.Source, t.t.Target, t.t.Table).Add(float64(n))
	}
}

// SnapshotProgress records a table's copied rows and estimate, on every
// mapping of it (a table is read once for all its mappings).
func (m *Monitor) SnapshotProgress(source string, rows, total int64, done bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, t := range m.tables {
		if k.source == source {
			t.t.SnapshotRows, t.t.SnapshotTotal, t.t.SnapshotDone = rows, total, done
			m.snapRows.WithLabelValues(source).Set(float64(rows))
			m.snapTotal.WithLabelValues(source).Set(float64(total))
		}
	}
}

// Error records the last error of a source table, on every mapping of it
// ("" source: of the daemon).
func (m *Monitor) Error(source string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	found := false
	for k, t := range m.tables {
		if k.source == source {
			t.t.LastError, t.t.LastErrorAt = err.Error(), m.now()
			found = true
		}
	}
	if !found {
		m.lastErr = err.Error()
	}
}

// TargetTable records that a target table fails as a whole (err) or
// recovered (nil); writers call it through their TableHealth hook.
func (m *Monitor) TargetTable(target, table string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.tables {
		if t.t.Target != target || t.t.Table != table {
			continue
		}
		t.t.Failing = ""
		if err != nil {
			t.t.Failing = err.Error()
			t.t.LastError, t.t.LastErrorAt = err.Error(), m.now()
		}
	}
}

// Position records the acknowledged LSN and the lag.
func (m *Monitor) Position(acknowledged string, lagBytes int64, lagSeconds float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ack, m.lagB, m.lagS = acknowledged, lagBytes, lagSeconds
	m.lagBytes.Set(float64(lagBytes))
	m.lagSeconds.Set(lagSeconds)
}

// SlotRetention records how much WAL the slot may still hold back: safe
// bytes (-1 when unlimited) and the share of the budget left.
func (m *Monitor) SlotRetention(safeBytes int64, left float64) {
	m.slotSafe.Set(float64(safeBytes))
	m.slotLeft.Set(left)
}

// Heartbeat counts an emitted heartbeat.
func (m *Monitor) Heartbeat() { m.heartbeats.Inc() }

// InFlight records the bytes in flight.
func (m *Monitor) InFlight(bytes int64) { m.inFlight.Set(float64(bytes)) }

// Snapshot returns a copy of every figure.
func (m *Monitor) Snapshot() Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	s := Snapshot{Now: now, Started: m.started, Phase: m.phase, Standby: m.standby, Acknowledged: m.ack, LagBytes: m.lagB, LagSeconds: m.lagS, LastError: m.lastErr, Reconnects: m.reconns}
	if m.phase == "reconnecting" {
		s.ReconnectAttempt = m.attempt
	}
	if waited, stalled := m.stalled(now); stalled {
		s.Phase = "stalled"
		s.Stalled = fmt.Sprintf("no message from PostgreSQL for %s", waited.Round(time.Second))
	}
	for _, t := range m.tables {
		t.advance(now)
		c := t.t
		c.Throughput = make([]float64, throughputSlots)
		for i := range c.Throughput {
			// Oldest first; the current, incomplete slot is left out.
			c.Throughput[i] = t.buckets[(t.head+1+i)%throughputSlots] / throughputSlot.Seconds()
		}
		c.Throughput = c.Throughput[:throughputSlots-1]
		s.Tables = append(s.Tables, c)
	}
	sort.Slice(s.Tables, func(i, j int) bool {
		a, b := s.Tables[i], s.Tables[j]
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		return a.Table < b.Table
	})
	return s
}

// advance moves the ring to now's slot, clearing the slots skipped.
func (t *tableState) advance(now time.Time) {
	slot := now.Truncate(throughputSlot)
	steps := int(slot.Sub(t.headAt) / throughputSlot)
	if steps <= 0 {
		return
	}
	if steps > throughputSlots {
		steps = throughputSlots
	}
	for i := 0; i < steps; i++ {
		t.head = (t.head + 1) % throughputSlots
		t.buckets[t.head] = 0
	}
	t.headAt = slot
}
