package replication

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/replicator-cdc/replicator"
)

// Sink consumes decoded messages in stream order. It lives on the stream's
// goroutine: when Handle or Drain must wait (backpressure), it calls tick
// regularly so that standby status updates keep flowing to the server.
type Sink interface {
	// Handle takes one message. Cell data stays valid after it returns.
	Handle(m *Message, tick func() error) error
	// Mark says the server has sent everything before lsn (a keepalive): it
	// becomes acknowledged once everything handed over before it is.
	Mark(lsn replicator.LSN)
	// Idle is called regularly, to flush batches that aged and to surface
	// writers' fatal errors.
	Idle(tick func() error) error
	// Acknowledged is the end of the contiguous prefix of transactions every
	// target has confirmed: the only position ever reported as flushed.
	Acknowledged() replicator.LSN
	// Drain hands over everything pending and waits until it is confirmed or
	// ctx ends.
	Drain(ctx context.Context, tick func() error) error
}

// Stream reads a slot's changes. One goroutine (Run's) owns the connection.
type Stream struct {
	Conn *pgconn.PgConn
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
	// DryRun reports the start position forever: nothing is acknowledged.
	DryRun bool
	Logger *slog.Logger

	start       replicator.LSN
	lastMessage time.Time
	received    replicator.LSN
	reported   replicator.LSN
	lastStatus time.Time
	msg        Message
}

// pollInterval bounds how long a read waits, so that shutdown, aged batches
// and status updates are noticed promptly on an idle stream.
const pollInterval = 200 * time.Millisecond

// ackStatusInterval is how soon a status update follows an advanced
// acknowledgement, so that the slot's position tracks the targets closely.
const ackStatusInterval = time.Second

// Run streams until ctx ends (then drains and returns nil) or a fatal error.
func (s *Stream) Run(ctx context.Context) error {
	lastIdle, lastMaintain := time.Now(), time.Now()
	s.lastMessage = time.Now()
	s.start = s.Sink.Acknowledged()
	var deadlineSet time.Time
	for {
		if ctx.Err() != nil {
			return s.shutdown()
		}
		if err := s.tick(); err != nil {
			return err
		}
		if time.Since(lastIdle) >= pollInterval {
			lastIdle = time.Now()
			if err := s.Sink.Idle(s.tick); err != nil {
				return err
			}
		}
		if s.Maintain != nil && time.Since(lastMaintain) >= time.Second {
			lastMaintain = time.Now()
			if err := s.Maintain(s.lastMessage); err != nil {
				return err
			}
		}
		// A deadline on the socket rather than a per-read context: pgconn
		// watches a cancellable context with a goroutine per read, which
		// costs more than decoding the message.
		if now := time.Now(); now.Sub(deadlineSet) >= pollInterval/4 {
			if err := s.Conn.Conn().SetReadDeadline(now.Add(pollInterval)); err != nil {
				return fmt.Errorf("replication: set read deadline: %w", err)
			}
			deadlineSet = now
		}
		raw, err := s.Conn.ReceiveMessage(context.Background())
		if err != nil {
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("replication: receive: %w", err)
		}
		if err := s.receive(raw); err != nil {
			return err
		}
	}
}

func (s *Stream) receive(raw pgproto3.BackendMessage) error {
	s.lastMessage = time.Now()
	switch m := raw.(type) {
	case *pgproto3.CopyData:
		return s.copyData(m.Data)
	case *pgproto3.ErrorResponse:
		return fmt.Errorf("replication: server error: %w", pgconn.ErrorResponseToPgError(m))
	case *pgproto3.CopyDone:
		return errors.New("replication: the server ended the stream")
	case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		return nil
	default:
		return fmt.Errorf("replication: unexpected message %T", raw)
	}
}

func (s *Stream) copyData(d []byte) error {
	if len(d) == 0 {
		return errors.New("replication: empty CopyData")
	}
	switch d[0] {
	case 'w':
		if len(d) < 25 {
			return errors.New("replication: short XLogData")
		}
		walStart := replicator.LSN(binary.BigEndian.Uint64(d[1:]))
		// The receive buffer is reused by the next read; records keep
		// slices of the message, so it gets its own copy.
		payload := append([]byte(nil), d[25:]...)
		if err := Decode(payload, &s.msg); err != nil {
			return fmt.Errorf("replication: at %s: %w", walStart, err)
		}
		if walStart > s.received {
			s.received = walStart
		}
		return s.Sink.Handle(&s.msg, s.tick)
	case 'k':
		if len(d) < 18 {
			return errors.New("replication: short keepalive")
		}
		walEnd := replicator.LSN(binary.BigEndian.Uint64(d[1:]))
		if walEnd > s.received {
			s.received = walEnd
		}
		s.Sink.Mark(walEnd)
		if d[17] != 0 {
			return s.sendStatus()
		}
		return nil
	default:
		return fmt.Errorf("replication: unknown CopyData type %q", d[0])
	}
}

// tick sends a status update when one is due: every StatusInterval, and
// within ackStatusInterval of the acknowledged position moving.
func (s *Stream) tick() error {
	since := time.Since(s.lastStatus)
	if since >= s.StatusInterval || (since >= ackStatusInterval && s.Sink.Acknowledged() > s.reported) {
		return s.sendStatus()
	}
	return nil
}

func (s *Stream) sendStatus() error {
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
	if err := sendStandbyStatus(s.Conn, write, ack, false); err != nil {
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
	// The final status update is a write; a read deadline must not linger
	// into the next user of the connection.
	_ = s.Conn.Conn().SetReadDeadline(time.Time{})
	s.Logger.Info("stopping: draining in-flight writes", "timeout", s.ShutdownTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
	defer cancel()
	drainErr := s.Sink.Drain(ctx, s.tick)
	if err := s.sendStatus(); err != nil {
		return errors.Join(drainErr, err)
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
