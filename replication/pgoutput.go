package replication

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/replicator-cdc/replicator"
)

// Decoder decodes pgoutput (protocol version 1) messages into
// replicator.Messages. It keeps the tuple buffers it reuses from one
// message to the next, so decoding allocates nothing but what a message
// must own (a relation, a truncate's list).
type Decoder struct {
	oldBuf, newBuf []replicator.Cell
}

var errShort = errors.New("message truncated")

type reader struct {
	b   []byte
	err error
}

func (r *reader) byte1() byte {
	if r.err != nil || len(r.b) < 1 {
		r.err = errShort
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) int16() int16 {
	if r.err != nil || len(r.b) < 2 {
		r.err = errShort
		return 0
	}
	v := int16(binary.BigEndian.Uint16(r.b))
	r.b = r.b[2:]
	return v
}

func (r *reader) uint32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.err = errShort
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) uint64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.err = errShort
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || len(r.b) < n {
		r.err = errShort
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) cstring() string {
	if r.err != nil {
		return ""
	}
	for i, c := range r.b {
		if c == 0 {
			s := string(r.b[:i])
			r.b = r.b[i+1:]
			return s
		}
	}
	r.err = errors.New("unterminated string")
	return ""
}

// Decode parses one pgoutput message into m. Cell data aliases data; m's
// Old and New alias d's buffers until the next Decode.
func (d *Decoder) Decode(data []byte, m *replicator.Message) error {
	if len(data) == 0 {
		return errors.New("pgoutput: empty message")
	}
	*m = replicator.Message{Kind: replicator.MessageKind(data[0])}
	r := &reader{b: data[1:]}
	switch m.Kind {
	case replicator.MessageBegin:
		m.LSN = replicator.LSN(r.uint64())
		m.Time = PGTime(int64(r.uint64()))
		m.Xid = r.uint32()
	case replicator.MessageCommit:
		r.byte1()
		m.LSN = replicator.LSN(r.uint64())
		m.EndLSN = replicator.LSN(r.uint64())
		m.Time = PGTime(int64(r.uint64()))
		// The reused cells point into the frames they were decoded from:
		// drop them once a transaction, so that no frame (a large old row)
		// stays alive after its records were built.
		clear(d.oldBuf[:cap(d.oldBuf)])
		clear(d.newBuf[:cap(d.newBuf)])
	case replicator.MessageOrigin:
		m.LSN = replicator.LSN(r.uint64())
		m.Prefix = r.cstring()
	case replicator.MessageRelation:
		m.Relation = decodeRelation(r)
	case replicator.MessageType:
		r.uint32()
		r.cstring()
		r.cstring()
	case replicator.MessageInsert:
		m.RelationID = r.uint32()
		if tag := r.byte1(); r.err == nil && tag != 'N' {
			return fmt.Errorf("pgoutput: insert: unexpected tuple tag %q", tag)
		}
		m.New = decodeTuple(r, &d.newBuf)
	case replicator.MessageUpdate:
		m.RelationID = r.uint32()
		tag := r.byte1()
		if tag == 'K' || tag == 'O' {
			m.OldIsKey = tag == 'K'
			m.Old = decodeTuple(r, &d.oldBuf)
			tag = r.byte1()
		}
		if r.err == nil && tag != 'N' {
			return fmt.Errorf("pgoutput: update: unexpected tuple tag %q", tag)
		}
		m.New = decodeTuple(r, &d.newBuf)
	case replicator.MessageDelete:
		m.RelationID = r.uint32()
		tag := r.byte1()
		if r.err == nil && tag != 'K' && tag != 'O' {
			return fmt.Errorf("pgoutput: delete: unexpected tuple tag %q", tag)
		}
		m.OldIsKey = tag == 'K'
		m.Old = decodeTuple(r, &d.oldBuf)
	case replicator.MessageTruncate:
		n := r.uint32()
		opts := r.byte1()
		m.Cascade = opts&1 != 0
		m.RestartIdentity = opts&2 != 0
		if r.err != nil || uint64(n)*4 > uint64(len(r.b)) {
			return fmt.Errorf("pgoutput: truncate: %w", errShort)
		}
		m.RelationIDs = make([]uint32, 0, n)
		for i := uint32(0); i < n && r.err == nil; i++ {
			m.RelationIDs = append(m.RelationIDs, r.uint32())
		}
	case replicator.MessageLogical:
		m.Transactional = r.byte1()&1 != 0
		m.LSN = replicator.LSN(r.uint64())
		m.Prefix = r.cstring()
		m.Content = r.bytes(int(int32(r.uint32())))
	default:
		return fmt.Errorf("pgoutput: unknown message type %q", data[0])
	}
	if r.err != nil {
		return fmt.Errorf("pgoutput: %c message: %w", m.Kind, r.err)
	}
	return nil
}

func decodeRelation(r *reader) *replicator.Relation {
	rel := &replicator.Relation{ID: r.uint32(), Namespace: r.cstring(), Name: r.cstring(), ReplicaIdentity: r.byte1()}
	n := int(r.int16())
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = errShort
		return nil
	}
	rel.Columns = make([]replicator.Column, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		flags := r.byte1()
		rel.Columns = append(rel.Columns, replicator.Column{Key: flags&1 != 0, Name: r.cstring(), TypeOID: r.uint32(), TypMod: int32(r.uint32())})
	}
	return rel
}

func decodeTuple(r *reader, buf *[]replicator.Cell) []replicator.Cell {
	n := int(r.int16())
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = errShort
		return nil
	}
	cells := (*buf)[:0]
	for i := 0; i < n && r.err == nil; i++ {
		c := replicator.Cell{State: r.byte1()}
		switch c.State {
		case replicator.CellNull, replicator.CellUnchanged:
		case replicator.CellText, replicator.CellBinary:
			c.Data = r.bytes(int(int32(r.uint32())))
		default:
			if r.err == nil {
				r.err = fmt.Errorf("unknown column state %q", c.State)
			}
		}
		cells = append(cells, c)
	}
	*buf = cells
	return cells
}
