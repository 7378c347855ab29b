package replication

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/replicator-cdc/replicator"
)

// Wire is a replication connection in streaming mode, read directly: once
// START_REPLICATION has run, the connection carries nothing but CopyData
// frames, and parsing them here with a large buffer costs a fraction of a
// general protocol reader's per-message work.
type Wire struct {
	conn net.Conn
	fr   frameReader
}

// wireBuffer is the read buffer: when the stream is behind, one read takes
// hundreds of changes.
const wireBuffer = 64 << 10

// maxFrame bounds a frame's length; larger is a corrupt stream (the server
// limits a message to 1 GB).
const maxFrame = 1 << 30

// StartStream takes the (idle) replication connection over and starts
// streaming from the slot at lsn. The PgConn is unusable afterwards; close
// the Wire instead.
func StartStream(ctx context.Context, pg *pgconn.PgConn, slot, publication string, lsn replicator.LSN) (*Wire, error) {
	if err := pg.SyncConn(ctx); err != nil {
		return nil, fmt.Errorf("replication: start: %w", err)
	}
	// Hijack is outside pgconn's compatibility promise; the fields used
	// here (the net.Conn) are the stable core of it.
	hc, err := pg.Hijack()
	if err != nil {
		return nil, fmt.Errorf("replication: start: %w", err)
	}
	w := &Wire{conn: hc.Conn, fr: frameReader{r: bufio.NewReaderSize(hc.Conn, wireBuffer)}}
	sql := fmt.Sprintf("START_REPLICATION SLOT %s LOGICAL %s (proto_version '1', publication_names %s, messages 'true')",
		quoteIdent(slot), lsn, quoteLiteral(publication))
	query, err := (&pgproto3.Query{String: sql}).Encode(nil)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("replication: start: %w", err)
	}
	if err := w.write(query); err != nil {
		w.Close()
		return nil, fmt.Errorf("replication: start: %w", err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	if err := w.conn.SetReadDeadline(deadline); err != nil {
		w.Close()
		return nil, fmt.Errorf("replication: start: %w", err)
	}
	for {
		typ, body, err := w.fr.next()
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("replication: start: %w", err)
		}
		switch typ {
		case 'W': // CopyBothResponse
			return w, nil
		case 'E':
			w.Close()
			return nil, fmt.Errorf("replication: start: %w", decodeError(body))
		case 'N', 'S':
		default:
			w.Close()
			return nil, fmt.Errorf("replication: start: unexpected message %q", typ)
		}
	}
}

// Close closes the connection.
func (w *Wire) Close() error { return w.conn.Close() }

// End leaves streaming mode the way the server expects, so that a clean
// stop does not read as a lost standby ("unexpected EOF on standby
// connection" in its log): CopyDone, then whatever the server still sends
// up to its ReadyForQuery, then Terminate. It gives up at timeout; Close
// follows either way.
func (w *Wire) End(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if err := w.conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("replication: end stream: %w", err)
	}
	if _, err := w.conn.Write([]byte{'c', 0, 0, 0, 4}); err != nil {
		return fmt.Errorf("replication: end stream: %w", err)
	}
	for {
		typ, body, err := w.fr.next()
		if err != nil {
			return fmt.Errorf("replication: end stream: %w", err)
		}
		switch typ {
		case 'Z': // ReadyForQuery: the server left streaming mode
			if _, err := w.conn.Write([]byte{'X', 0, 0, 0, 4}); err != nil {
				return fmt.Errorf("replication: end stream: %w", err)
			}
			return nil
		case 'E':
			return fmt.Errorf("replication: end stream: %w", decodeError(body))
		}
	}
}

func (w *Wire) write(b []byte) error {
	if err := w.conn.SetWriteDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return err
	}
	_, err := w.conn.Write(b)
	return err
}

// sendCopyData writes one CopyData frame.
func (w *Wire) sendCopyData(payload []byte) error {
	frame := make([]byte, 5, 5+len(payload))
	frame[0] = 'd'
	binary.BigEndian.PutUint32(frame[1:], uint32(4+len(payload)))
	return w.write(append(frame, payload...))
}

func decodeError(body []byte) error {
	var e pgproto3.ErrorResponse
	if err := e.Decode(body); err != nil {
		return fmt.Errorf("undecodable error response: %w", err)
	}
	return pgconn.ErrorResponseToPgError(&e)
}

// frameReader reads protocol frames. A read deadline may interrupt it at
// any byte: it keeps what it has and resumes on the next call.
type frameReader struct {
	r    io.Reader
	hdr  [5]byte
	hdrN int
	size int    // body length of the frame being read, -1 before its header
	body []byte // grows as bytes arrive, so a corrupt length allocates nothing
}

var errFrameTooLarge = errors.New("frame length out of range")

// next returns the next frame's type and body; the body is the caller's.
func (f *frameReader) next() (byte, []byte, error) {
	for f.hdrN < len(f.hdr) {
		n, err := f.r.Read(f.hdr[f.hdrN:])
		f.hdrN += n
		if err != nil && f.hdrN < len(f.hdr) {
			return 0, nil, err
		}
	}
	if f.body == nil {
		size := int64(binary.BigEndian.Uint32(f.hdr[1:])) - 4
		if size < 0 || size > maxFrame {
			return 0, nil, fmt.Errorf("%w: %d", errFrameTooLarge, size)
		}
		f.size = int(size)
		f.body = make([]byte, 0, min(f.size, wireBuffer))
	}
	for len(f.body) < f.size {
		if len(f.body) == cap(f.body) {
			f.body = append(f.body, make([]byte, min(f.size-len(f.body), cap(f.body)))...)[:len(f.body)]
		}
		n, err := f.r.Read(f.body[len(f.body):min(cap(f.body), f.size)])
		f.body = f.body[:len(f.body)+n]
		if err != nil && len(f.body) < f.size {
			return 0, nil, err
		}
	}
	typ, body := f.hdr[0], f.body
	f.hdrN, f.body = 0, nil
	return typ, body, nil
}
