package replication

import (
	"context"
	"log/slog"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/internal/pgtest"
	"github.com/replicator-cdc/replicator/internal/tcpproxy"
)

// fixedSink takes every message and acknowledges what the test sets.
type fixedSink struct {
	mu      sync.Mutex
	ack     replicator.LSN
	commits []replicator.LSN
}

func (s *fixedSink) Handle(m *replicator.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.Kind == replicator.MessageCommit {
		s.commits = append(s.commits, m.EndLSN)
	}
	return nil
}
func (s *fixedSink) Mark(replicator.LSN)         {}
func (s *fixedSink) Idle() error                 { return nil }
func (s *fixedSink) Drain(context.Context) error { return nil }

func (s *fixedSink) setAck(lsn replicator.LSN) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ack = lsn
}

func (s *fixedSink) Acknowledged() replicator.LSN {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ack
}

func (s *fixedSink) committed() []replicator.LSN {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]replicator.LSN(nil), s.commits...)
}

func (s *fixedSink) waitCommits(t *testing.T, n int) []replicator.LSN {
	t.Helper()
	for i := 0; i < 600 && len(s.committed()) < n; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	require.GreaterOrEqual(t, len(s.committed()), n, "the stream did not deliver %d transactions within a minute", n)
	return s.committed()
}

// streamSetup is a table, a publication and a slot in a server of its own
// whose walsenders time out after 2s, streamed through a freezable proxy.
type streamSetup struct {
	db     *pgx.Conn
	proxy  *tcpproxy.Proxy
	sink   *fixedSink
	stream *Stream
}

func startStream(t *testing.T) *streamSetup {
	c := pgtest.Start(t, pgtest.Options{Settings: map[string]string{"wal_sender_timeout": "2s"}})
	ctx := context.Background()
	dsn := c.NewDatabase(t)
	db, err := ConnectSQL(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close(context.Background()) })
	_, err = db.Exec(ctx, `CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION pub FOR TABLE t`)
	require.NoError(t, err)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	proxy, err := tcpproxy.Start(u.Host)
	require.NoError(t, err)
	t.Cleanup(func() { proxy.Close() })
	u.Host = proxy.Addr()
	repl, err := ConnectReplication(ctx, u.String())
	require.NoError(t, err)
	slot, err := CreateSlot(ctx, repl, "s", false)
	require.NoError(t, err)
	w, err := StartStream(ctx, repl, "s", "pub", slot.ConsistentPoint)
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	sink := &fixedSink{ack: slot.ConsistentPoint}
	return &streamSetup{db: db, proxy: proxy, sink: sink, stream: &Stream{
		Conn: w, Sink: sink, StatusInterval: 200 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		Checkpoint: func(replicator.LSN) error { return nil }, Logger: slog.New(slog.DiscardHandler),
	}}
}

func (s *streamSetup) run() (cancel func(), done <-chan error) {
	ctx, stop := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- s.stream.Run(ctx) }()
	return stop, ch
}

func (s *streamSetup) exec(t *testing.T, sql string) {
	t.Helper()
	_, err := s.db.Exec(context.Background(), sql)
	require.NoError(t, err)
}

// A frozen network (no byte, no close) is noticed from the server's
// silence: the stream ends with ErrStreamLost, which the daemon reconnects on.
func TestStreamTakesFrozenConnectionForDead(t *testing.T) {
	s := startStream(t)
	cancel, done := s.run()
	defer cancel()
	s.exec(t, `INSERT INTO t VALUES (1)`)
	s.sink.waitCommits(t, 1)
	s.proxy.Freeze()
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrStreamLost)
		require.ErrorContains(t, err, "no message from PostgreSQL for")
	case <-time.After(time.Minute):
		t.Fatal("the stream did not notice the frozen network within a minute")
	}
}

// An idle server that hears from the stream often never needs to ask for
// a reply, and sends nothing: the stream asks it for one, so that silence
// alone is not taken for a dead connection.
func TestIdleStreamIsNotTakenForDead(t *testing.T) {
	s := startStream(t)
	cancel, done := s.run()
	select {
	case err := <-done:
		t.Fatalf("the idle stream stopped: %v", err)
	case <-time.After(3 * silenceFor(2*time.Second).dead):
	}
	cancel()
	require.NoError(t, <-done)
}

// The flush position reported is the sink's acknowledged one, never the
// received one: the server keeps the WAL of what is not acknowledged.
func TestStatusReportsTheAcknowledgedPositionAsFlushed(t *testing.T) {
	s := startStream(t)
	cancel, done := s.run()
	s.exec(t, `INSERT INTO t VALUES (1)`)
	s.exec(t, `INSERT INTO t VALUES (2)`)
	commits := s.sink.waitCommits(t, 2)
	s.sink.setAck(commits[0])
	var flush, write replicator.LSN
	for i := 0; i < 600; i++ {
		var f, w string
		require.NoError(t, s.db.QueryRow(context.Background(),
			`SELECT flush_lsn::text, write_lsn::text FROM pg_stat_replication`).Scan(&f, &w))
		var err error
		flush, err = replicator.ParseLSN(f)
		require.NoError(t, err)
		write, err = replicator.ParseLSN(w)
		require.NoError(t, err)
		if flush == commits[0] && write >= commits[1] {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, commits[0], flush, "flush position")
	require.GreaterOrEqual(t, write, commits[1], "write position")
	cancel()
	require.NoError(t, <-done)
	var confirmed string
	require.NoError(t, s.db.QueryRow(context.Background(),
		`SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 's'`).Scan(&confirmed))
	require.Equal(t, commits[0].String(), confirmed)
}
