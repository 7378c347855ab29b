package replication

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

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
}

// pollInterval bounds how long a read waits, so that shutdown, aged batches
// and status updates are noticed promptly on an idle stream.
const pollInterval = 200 * time.Millisecond

// endTimeout bounds the goodbye to the server on a clean stop.
const endTimeout = 2 * time.Second

// ackStatusInterval is how soon a status update follows an advanced
// acknowledgement, so that the slot's position tracks the targets closely.
const ackStatusInterval = time.Second

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
	var deadlineSet time.Time
	for {
		if ctx.Err() != nil {
			return nil
		}
		if err := s.UpdateStatus(); err != nil {
			return err
		}
		if time.Since(lastIdle) >= pollInterval {
			lastIdle = time.Now()
			if err := s.Sink.Idle(); err != nil {
				return err
			}
		}
		if s.Maintain != nil && time.Since(lastMaintain) >= time.Second {
			lastMaintain = time.Now()
			if err := s.Maintain(s.lastMessage); err != nil {
				return err
			}
		}
		// Setting the deadline per read would cost a timer update per
		// change; a poll interval's precision is all that is needed.
		if now := time.Now(); now.Sub(deadlineSet) >= pollInterval/4 {
			if err := s.Conn.conn.SetReadDeadline(now.Add(pollInterval)); err != nil {
				return fmt.Errorf("replication: set read deadline: %w", err)
			}
			deadlineSet = now
		}
		typ, body, err := s.Conn.fr.next()
		if err != nil {
			var netErr net.Error
			if errors.As(err, &netErr) && netErr.Timeout() {
				continue
			}
			return fmt.Errorf("%w: receive: %w", ErrStreamLost, err)
		}
		if err := s.receive(typ, body); err != nil {
			return err
		}
	}
}

func (s *Stream) receive(typ byte, body []byte) error {
	s.lastMessage = time.Now()
	switch typ {
	case 'd':
		return s.copyData(body)
	case 'E':
		return fmt.Errorf("replication: server error: %w", decodeError(body))
	case 'c', 'C', 'Z':
		// CopyDone, and what follows it: a server shutting down ends the
		// copy before closing the connection.
		return fmt.Errorf("%w: the server ended the stream (message %q)", ErrStreamLost, typ)
	case 'N', 'S':
		return nil
	default:
		return fmt.Errorf("replication: unexpected message %q", typ)
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
		if err := s.decoder.Decode(d[25:], &s.msg); err != nil {
			return fmt.Errorf("replication: at %s: %w", walStart, err)
		}
		if walStart > s.received {
			s.received = walStart
		}
		return s.Sink.Handle(&s.msg)
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

// UpdateStatus sends a status update when one is due: every
// StatusInterval, and within ackStatusInterval of the acknowledged position
// moving. It must run on the stream's goroutine (Run's, or the Sink's
// while Run calls it), which owns the connection.
func (s *Stream) UpdateStatus() error {
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
	s.Logger.Info("stopping: draining in-flight writes", "timeout", s.ShutdownTimeout)
	if s.OnStop != nil {
		s.OnStop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
	defer cancel()
	drainErr := s.Sink.Drain(ctx)
	if err := s.sendStatus(); err != nil {
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
