package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/replicator-cdc/replicator"
)

// Sink consumes decoded messages in stream order. It lives on the stream's
// goroutine. When it must wait for the targets (backpressure, a drain) it
// keeps calling the stream's UpdateStatus, which the daemon gives it once
// per stream, so that standby status updates keep flowing to the server.
type Sink interface {
	// Handle takes one message. Its cell data is the sink's only until
	// Handle returns: what the sink keeps, it copies (records own their
	// bytes), so that no frame outlives its message.
	Handle(m *replicator.Message) error
	// Mark says the server has sent everything before lsn (a keepalive): it
	// becomes acknowledged once everything handed over before it is.
	Mark(lsn replicator.LSN)
	// Idle is called regularly, to flush batches that aged and to surface
	// writers' fatal errors.
	Idle() error
	// Acknowledged is the end of the contiguous prefix of transactions every
	// target has confirmed: the only position ever reported as flushed.
	Acknowledged() replicator.LSN
	// Drain hands over everything pending and waits until it is confirmed or
	// ctx ends.
	Drain(ctx context.Context) error
}

// ErrStreamLost says the replication connection ended without the daemon
// asking: the server restarted, or the walsender was terminated.
var ErrStreamLost = errors.New("replication: the stream from PostgreSQL ended unexpectedly")

// Stream reads a slot's changes. One goroutine (Run's) owns the connection.
type Stream struct {
	Conn *Wire
	Sink Sink
	// StatusInterval bounds the time between standby status updates.
	StatusInterval time.Duration
	// ShutdownTimeout bounds the drain when ctx ends.
	ShutdownTimeout time.Duration
	// Checkpoint durably records an acknowledged position before the server
	// hears of it.
	Checkpoint func(replicator.LSN) error
	// OnStatus, when set, learns the positions after each status update.
	OnStatus func(received, acknowledged replicator.LSN)
	// Maintain, when set, runs about once a second on the stream's
	// goroutine (heartbeats, slot checks); lastMessage is when the server
	// last sent anything. Its error stops the stream.
	Maintain func(lastMessage time.Time) error
	// OnStop, when set, runs as the drain after a stop signal begins.
	OnStop func()
	// OnListening, when set, learns about every poll interval how long the
	// stream has waited for the server in vain, and the wait past which it
	// is stalled (monitor.Listening).
	OnListening func(waited, staleAfter time.Duration)
	// DryRun reports the start position forever: nothing is acknowledged.
	DryRun bool
	Logger *slog.Logger

	start       replicator.LSN
	lastMessage time.Time
	received    replicator.LSN
	reported    replicator.LSN
	lastStatus  time.Time
	decoder     Decoder
	msg         replicator.Message

	silence    silence
	quietFor   time.Duration // waited in vain since the last message
	probed     bool          // a reply was asked for since the last message
	lastReport time.Time     // of OnListening
}

// pollInterval bounds how long a read waits, so that shutdown, aged batches
// and status updates are noticed promptly on an idle stream.
const pollInterval = 200 * time.Millisecond

// endTimeout bounds the goodbye to the server on a clean stop.
const endTimeout = 2 * time.Second

// ackStatusInterval is how soon a status update follows an advanced
// acknowledgement, so that the slot's position tracks the targets closely.
const ackStatusInterval = time.Second

// Bounds on the silence of a live server when its wal_sender_timeout gives
// none (0: disabled) or an unusably small one.
const (
	defaultSilence = time.Minute
	minSilence     = 2 * time.Second
)

// silence says how long the server may stay silent while the stream waits
// for it. A walsender gives up on a standby it has not heard from within
// wal_sender_timeout, so the same bound is used in return: after half of it
// a status update asks the server for a reply, which a live one sends at
// once; past three quarters the stream is reported stalled; at the whole of
// it the connection is taken for dead (a frozen network, a vanished host).
type silence struct {
	probe, stale, dead time.Duration
}

func silenceFor(walSenderTimeout time.Duration) silence {
	dead := walSenderTimeout
	if dead <= 0 {
		dead = defaultSilence
	}
	dead = max(dead, minSilence)
	return silence{probe: dead / 2, stale: dead * 3 / 4, dead: dead}
}

// Run streams until ctx ends (then drains and returns nil) or a fatal error.
// The sink's waits for the targets end on ctx too, so a stop is honoured
// while the targets are down and the reader is blocked.
func (s *Stream) Run(ctx context.Context) error {
	err := s.run(ctx)
	if err == nil || (ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		return s.shutdown()
	}
	return err
}

func (s *Stream) run(ctx context.Context) error {
	lastIdle, lastMaintain := time.Now(), time.Now()
	s.lastMessage = time.Now()
	s.start = s.Sink.Acknowledged()
	s.silence = silenceFor(s.Conn.walSenderTimeout)
	for {
		if ctx.Err() != nil {
			return nil
		}
		// One clock reading serves the loop's checks and the read (six
		// readings per change were 4% of the daemon's CPU).
		now := time.Now()
		if err := s.updateStatus(now); err != nil {
			return err
		}
		if now.Sub(lastIdle) >= pollInterval {
			if err := s.Sink.Idle(); err != nil {
				return err
			}
			lastIdle, now = now, time.Now()
		}
		if s.Maintain != nil && now.Sub(lastMaintain) >= time.Second {
			if err := s.Maintain(s.lastMessage); err != nil {
				return err
			}
			lastMaintain, now = now, time.Now()
		}
		msg, err := s.Conn.receive(now)
		if err != nil {
			return err
		}
		if msg == nil {
			if err := s.quiet(time.Since(now)); err != nil {
				return err
			}
			continue
		}
		s.heard()
		if err := s.receive(msg); err != nil {
			return err
		}
	}
}

// quiet counts time spent waiting for the server in vain. Only waiting
// counts: while the sink holds the stream back, nothing is read, and
// whatever the server sent meanwhile waits in the socket.
func (s *Stream) quiet(waited time.Duration) error {
	s.quietFor += waited
	switch {
	case s.quietFor >= s.silence.dead:
		return fmt.Errorf("%w: no message from PostgreSQL for %s although a reply was asked for (wal_sender_timeout %s): the network or the server is gone",
			ErrStreamLost, time.Since(s.lastMessage).Round(time.Second), s.Conn.walSenderTimeout)
	case s.quietFor >= s.silence.probe && !s.probed:
		s.probed = true
		return s.sendStatus(true)
	}
	return nil
}

// heard notes a message from the server.
func (s *Stream) heard() {
	s.lastMessage = time.Now()
	s.quietFor, s.probed = 0, false
}

func (s *Stream) receive(msg pgproto3.BackendMessage) error {
	switch msg := msg.(type) {
	case *pgproto3.CopyData:
		return s.copyData(msg.Data)
	case *pgproto3.ErrorResponse:
		return fmt.Errorf("replication: server error: %w", pgconn.ErrorResponseToPgError(msg))
	case *pgproto3.CopyDone, *pgproto3.CommandComplete, *pgproto3.ReadyForQuery:
		// CopyDone, and what follows it: a server shutting down ends the
		// copy before closing the connection.
		return fmt.Errorf("%w: the server ended the stream (%T)", ErrStreamLost, msg)
	case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		return nil
	default:
		return fmt.Errorf("replication: unexpected message %T", msg)
	}
}

func (s *Stream) copyData(d []byte) error {
	if len(d) == 0 {
		return errors.New("replication: empty CopyData")
	}
	switch d[0] {
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(d[1:])
		if err != nil {
			return fmt.Errorf("replication: %w", err)
		}
		walStart := replicator.LSN(xld.WALStart)
		// The connection reuses its read buffer for the next message: the
		// sink copies what it keeps (records own their bytes).
		if err := s.decoder.Decode(xld.WALData, &s.msg); err != nil {
			return fmt.Errorf("replication: at %s: %w", walStart, err)
		}
		if walStart > s.received {
			s.received = walStart
		}
		return s.Sink.Handle(&s.msg)
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		pkm, err := pglogrepl.ParsePrimaryKeepaliveMessage(d[1:])
		if err != nil {
			return fmt.Errorf("replication: %w", err)
		}
		walEnd := replicator.LSN(pkm.ServerWALEnd)
		if walEnd > s.received {
			s.received = walEnd
		}
		s.Sink.Mark(walEnd)
		if pkm.ReplyRequested {
			return s.sendStatus(false)
		}
		return nil
	default:
		return fmt.Errorf("replication: unknown CopyData type %q", d[0])
	}
}

// UpdateStatus sends a status update when one is due: every
// StatusInterval, and within ackStatusInterval of the acknowledged position
// moving. It must run on the stream's goroutine (Run's, or the Sink's
// while Run calls it), which owns the connection.
func (s *Stream) UpdateStatus() error {
	return s.updateStatus(time.Now())
}

func (s *Stream) updateStatus(now time.Time) error {
	// Reported from here, which also runs while the sink waits for the
	// targets: a stream that stops reporting is stuck elsewhere.
	if s.OnListening != nil && now.Sub(s.lastReport) >= pollInterval {
		s.lastReport = now
		s.OnListening(s.quietFor, s.silence.stale)
	}
	since := now.Sub(s.lastStatus)
	if since >= s.StatusInterval || (since >= ackStatusInterval && s.Sink.Acknowledged() > s.reported) {
		return s.sendStatus(false)
	}
	return nil
}

// sendStatus reports the positions; replyRequested asks the server to
// answer at once.
func (s *Stream) sendStatus(replyRequested bool) error {
	ack := s.Sink.Acknowledged()
	if s.DryRun {
		ack = s.start
	}
	if ack > s.reported {
		if err := s.Checkpoint(ack); err != nil {
			return err
		}
	}
	write := s.received
	if ack > write {
		write = ack
	}
	if err := s.Conn.sendStatus(write, ack, replyRequested); err != nil {
		return err
	}
	s.reported = ack
	s.lastStatus = time.Now()
	if s.OnStatus != nil {
		s.OnStatus(write, ack)
	}
	return nil
}

func (s *Stream) shutdown() error {
	s.Logger.Info("stopping: draining in-flight writes", "timeout", s.ShutdownTimeout)
	if s.OnStop != nil {
		s.OnStop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
	defer cancel()
	drainErr := s.Sink.Drain(ctx)
	if err := s.sendStatus(false); err != nil {
		return errors.Join(drainErr, err)
	}
	if err := s.Conn.End(endTimeout); err != nil {
		s.Logger.Debug("replication connection closed without the server's goodbye", "error", err)
	}
	s.Logger.Info("stopped", "acknowledged", s.reported)
	if drainErr != nil && !errors.Is(drainErr, context.DeadlineExceeded) {
		return drainErr
	}
	if drainErr != nil {
		s.Logger.Warn("drain timed out; unconfirmed changes will be resent on restart", "acknowledged", s.reported)
	}
	return nil
}
