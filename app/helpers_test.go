package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/config"
	"github.com/replicator-cdc/replicator/internal/pgtest"
	"github.com/replicator-cdc/replicator/monitor"
	"github.com/replicator-cdc/replicator/replication"
	"github.com/replicator-cdc/replicator/targets/memory"
)

var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	if rows := os.Getenv(fastSinkEnv); rows != "" {
		os.Exit(runFastSink(rows))
	}
	pgtest.Main(m, func(c *pgtest.Cluster) { cluster = c })
}

// env is one test's database, configuration and in-memory target.
type env struct {
	t        testing.TB
	name     string
	dsn      string
	db       *pgx.Conn
	mem      *memory.Writer
	stateDir string
}

func newEnv(t testing.TB, schema string) *env {
	return newNamedEnv(t, t.Name(), schema)
}

func newNamedEnv(t testing.TB, name, schema string) *env {
	t.Helper()
	ctx := context.Background()
	name = strings.ToLower(strings.NewReplacer("/", "_", " ", "_", "-", "_").Replace(name))
	dsn, err := cluster.CreateDatabase(ctx, name)
	require.NoError(t, err)
	db, err := replication.ConnectSQL(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close(context.Background()) })
	// Registered after Close, so run before it and after the test's daemons
	// stopped: the cluster's slots are few and shared by every test.
	t.Cleanup(func() {
		_, _ = db.Exec(context.Background(), `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`, "slot_"+name)
	})
	if schema != "" {
		_, err = db.Exec(ctx, schema)
		require.NoError(t, err)
	}
	return &env{t: t, name: name, dsn: dsn, db: db, mem: memory.New(), stateDir: t.TempDir()}
}

// config builds the daemon's configuration around the given mappings YAML
// (a list under "mappings:"), through the real parser.
func (e *env) config(mappings string, extra ...string) *config.Config {
	return e.configWithTargets("", mappings, extra...)
}

// configWithTargets adds targets (YAML entries under "targets:") to "mem".
func (e *env) configWithTargets(targets, mappings string, extra ...string) *config.Config {
	e.t.Helper()
	doc := fmt.Sprintf(`
source:
  dsn: %s
  slot: slot_%s
  publication: pub_%s
  status_interval: 1s
state:
  dir: %s
pipeline:
  flush_interval: 50ms
  snapshot_chunk_rows: 500
  shutdown_timeout: 10s
%s
targets:
  mem:
    type: gptbots
    api_key: unused
%s
mappings:
%s`, e.dsn, e.name, e.name, e.stateDir, strings.Join(extra, "\n"), targets, mappings)
	cfg, err := config.Parse("test.yaml", []byte(doc), func(string) (string, bool) { return "", false })
	require.NoError(e.t, err)
	return cfg
}

// running is a daemon started in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func (e *env) start(cfg *config.Config) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	logger := slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	go func() {
		r.done <- app.Run(ctx, cfg, app.Deps{Logger: logger, Writers: map[string]replicator.Writer{"mem": e.mem}})
	}()
	e.t.Cleanup(func() { r.stop() })
	return r
}

// stop asks the daemon to stop and returns what Run returned.
func (r *running) stop() error {
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(60 * time.Second):
			r.err = fmt.Errorf("daemon did not stop within 60s")
		}
	})
	return r.err
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = testWriter{}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	_, err := e.db.Exec(context.Background(), sql, args...)
	require.NoError(e.t, err)
}

// sourceRows reads a table as PostgreSQL's own JSON rendering of each row,
// keyed like the memory target keys its rows: independent of the mapping code.
func (e *env) sourceRows(table string, key ...string) map[string]map[string]any {
	e.t.Helper()
	rows, err := e.db.Query(context.Background(), fmt.Sprintf("SELECT to_jsonb(t)::text FROM %s t", table))
	require.NoError(e.t, err)
	defer rows.Close()
	out := map[string]map[string]any{}
	for rows.Next() {
		var text string
		require.NoError(e.t, rows.Scan(&text))
		row := decodeJSON(e.t, text).(map[string]any)
		parts := make([]string, len(key))
		for i, k := range key {
			b, err := json.Marshal(row[k])
			require.NoError(e.t, err)
			parts[i] = string(b)
		}
		out[strings.Join(parts, "|")] = row
	}
	require.NoError(e.t, rows.Err())
	return out
}

func targetRows(t testing.TB, w *memory.Writer, table string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for k, row := range w.Rows(table) {
		m := make(map[string]any, len(row))
		for col, v := range row {
			m[col] = decodeJSON(t, v)
		}
		out[k] = m
	}
	return out
}

func decodeJSON(t testing.TB, s string) any {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	require.NoError(t, d.Decode(&v), "decode %q", s)
	return v
}

// waitMirror waits until the target table equals the source table.
func (e *env) waitMirror(source, target string, timeout time.Duration, key ...string) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var diff string
	for time.Now().Before(deadline) {
		diff = compareRows(e.sourceRows(source, key...), targetRows(e.t, e.mem, target))
		if diff == "" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("target %s never matched source %s: %s", target, source, diff)
}

func compareRows(want, got map[string]map[string]any) string {
	var problems []string
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			problems = append(problems, "missing "+k)
		} else if !reflect.DeepEqual(w, g) {
			problems = append(problems, fmt.Sprintf("row %s differs: want %v got %v", k, abbreviate(w), abbreviate(g)))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			problems = append(problems, "stale "+k)
		}
	}
	if len(problems) == 0 {
		return ""
	}
	sort.Strings(problems)
	return fmt.Sprintf("%d rows wrong (source %d rows, target %d), e.g. %s", len(problems), len(want), len(got), strings.Join(problems[:min(3, len(problems))], "; "))
}

func abbreviate(row map[string]any) string {
	s := fmt.Sprint(row)
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// slotFlushed is the slot's confirmed_flush_lsn.
func (e *env) slotFlushed() string {
	var lsn *string
	err := e.db.QueryRow(context.Background(), "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", "slot_"+e.name).Scan(&lsn)
	if err != nil || lsn == nil {
		return ""
	}
	return *lsn
}

// lsnAtLeast asks the server whether a >= b.
func (e *env) lsnAtLeast(a, b string) bool {
	if a == "" {
		return false
	}
	var ok bool
	require.NoError(e.t, e.db.QueryRow(context.Background(), "SELECT $1::pg_lsn >= $2::pg_lsn", a, b).Scan(&ok))
	return ok
}

func (e *env) currentLSN() string {
	var lsn string
	require.NoError(e.t, e.db.QueryRow(context.Background(), "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn))
	return lsn
}

// startStreaming starts the daemon and waits until it streams (the snapshot
// is done and the slot is in use), so that what the test does next arrives
// as streamed changes.
func (e *env) startStreaming(cfg *config.Config) *running {
	e.t.Helper()
	r := e.start(cfg)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var active bool
		err := e.db.QueryRow(context.Background(), "SELECT active FROM pg_replication_slots WHERE slot_name = $1", "slot_"+e.name).Scan(&active)
		if err == nil && active {
			return r
		}
		select {
		case err := <-r.done:
			e.t.Fatalf("daemon stopped before streaming: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	e.t.Fatal("daemon did not start streaming within 60s")
	return nil
}

// startStreamingWith is startStreaming with the daemon's monitor given and
// its log also kept in logs; it waits until the monitor says streaming.
func (e *env) startStreamingWith(cfg *config.Config, mon *monitor.Monitor, logs io.Writer) *running {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{e.t}, logs), &slog.HandlerOptions{Level: slog.LevelInfo}))
	go func() {
		r.done <- app.Run(ctx, cfg, app.Deps{Logger: logger, Monitor: mon, Writers: writers(e)})
	}()
	e.t.Cleanup(func() { r.stop() })
	deadline := time.Now().Add(60 * time.Second)
	for mon.Snapshot().Phase != "streaming" {
		select {
		case err := <-r.done:
			e.t.Fatalf("daemon stopped before streaming: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.t.Fatal("daemon did not start streaming within 60s")
		}
	}
	return r
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func writers(e *env) map[string]replicator.Writer { return map[string]replicator.Writer{"mem": e.mem} }

func mustConnect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := replication.ConnectSQL(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func metricByName(t testing.TB, reg *prometheus.Registry, name string) prometheus.Collector {
	return metricWithLabels(t, reg, name, nil)
}

// metricWithLabels finds one series by name and labels, as a collector
// testutil can read.
func metricWithLabels(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) prometheus.Collector {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			var v float64
			switch {
			case m.GetCounter() != nil:
				v = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				v = float64(m.GetHistogram().GetSampleCount())
			}
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "copy"})
			g.Set(v)
			return g
		}
	}
	t.Fatalf("metric %s %v not found", name, labels)
	return nil
}
