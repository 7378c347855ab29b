package replication

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/replicator-cdc/replicator"
)

// MessageKind is the pgoutput message type byte.
type MessageKind byte

// The pgoutput (protocol version 1) messages the decoder understands.
const (
	KindBegin    MessageKind = 'B'
	KindCommit   MessageKind = 'C'
	KindOrigin   MessageKind = 'O'
	KindRelation MessageKind = 'R'
	KindType     MessageKind = 'Y'
	KindInsert   MessageKind = 'I'
	KindUpdate   MessageKind = 'U'
	KindDelete   MessageKind = 'D'
	KindTruncate MessageKind = 'T'
	KindMessage  MessageKind = 'M'
)

// Cell states in a tuple, as pgoutput sends them.
const (
	CellNull      byte = 'n'
	CellUnchanged byte = 'u' // an unchanged TOASTed value: not sent, not NULL
	CellText      byte = 't'
	CellBinary    byte = 'b'
)

// Cell is one column of a tuple. Data aliases the decoded message's buffer.
type Cell struct {
	State byte
	Data  []byte
}

// Column describes one column of a relation.
type Column struct {
	Name    string
	TypeOID uint32
	TypMod  int32
	// Key marks the columns of the replica identity.
	Key bool
}

// Relation describes a published table as the stream last announced it.
type Relation struct {
	ID              uint32
	Namespace, Name string
	// ReplicaIdentity is 'd' (default: primary key), 'f' (full), 'i' (index) or 'n' (nothing).
	ReplicaIdentity byte
	Columns         []Column
}

// QualifiedName is "schema.table".
func (r *Relation) QualifiedName() string { return r.Namespace + "." + r.Name }

// Message is one decoded pgoutput message. Only the fields of its Kind are
// set. Decoding into a reused Message reuses its tuple buffers, so a caller
// must be done with the previous message's Old and New cells (not the data
// they point to, which belongs to the decoded buffer) before decoding again.
type Message struct {
	Kind MessageKind

	// Begin: the commit LSN the transaction will end with. Commit: the
	// commit record's LSN. Message: the message's LSN.
	LSN replicator.LSN
	// EndLSN (Commit) is the end of the commit record: the position to acknowledge.
	EndLSN replicator.LSN
	// Time is the commit time in microseconds since 2000-01-01 (Begin, Commit).
	Time int64
	Xid  uint32

	// Relation (Relation messages).
	Relation *Relation

	// RelationID (Insert, Update, Delete) names the relation of Old and New.
	RelationID uint32
	// Old is the old key ('K') or old row ('O') of an Update or Delete, nil when not sent.
	Old []Cell
	// OldIsKey says Old holds only the replica identity columns.
	OldIsKey bool
	New      []Cell

	// Truncate.
	RelationIDs     []uint32
	Cascade         bool
	RestartIdentity bool

	// Logical message (pg_logical_emit_message).
	Transactional bool
	Prefix        string
	Content       []byte

	oldBuf, newBuf []Cell
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

// Decode parses one pgoutput message into m. Cell data aliases data.
func Decode(data []byte, m *Message) error {
	if len(data) == 0 {
		return errors.New("pgoutput: empty message")
	}
	oldBuf, newBuf := m.oldBuf, m.newBuf
	*m = Message{Kind: MessageKind(data[0]), oldBuf: oldBuf, newBuf: newBuf}
	r := &reader{b: data[1:]}
	switch m.Kind {
	case KindBegin:
		m.LSN = replicator.LSN(r.uint64())
		m.Time = int64(r.uint64())
		m.Xid = r.uint32()
	case KindCommit:
		r.byte1()
		m.LSN = replicator.LSN(r.uint64())
		m.EndLSN = replicator.LSN(r.uint64())
		m.Time = int64(r.uint64())
	case KindOrigin:
		m.LSN = replicator.LSN(r.uint64())
		m.Prefix = r.cstring()
	case KindRelation:
		m.Relation = decodeRelation(r)
	case KindType:
		r.uint32()
		r.cstring()
		r.cstring()
	case KindInsert:
		m.RelationID = r.uint32()
		if tag := r.byte1(); r.err == nil && tag != 'N' {
			return fmt.Errorf("pgoutput: insert: unexpected tuple tag %q", tag)
		}
		m.New = decodeTuple(r, &m.newBuf)
	case KindUpdate:
		m.RelationID = r.uint32()
		tag := r.byte1()
		if tag == 'K' || tag == 'O' {
			m.OldIsKey = tag == 'K'
			m.Old = decodeTuple(r, &m.oldBuf)
			tag = r.byte1()
		}
		if r.err == nil && tag != 'N' {
			return fmt.Errorf("pgoutput: update: unexpected tuple tag %q", tag)
		}
		m.New = decodeTuple(r, &m.newBuf)
	case KindDelete:
		m.RelationID = r.uint32()
		tag := r.byte1()
		if r.err == nil && tag != 'K' && tag != 'O' {
			return fmt.Errorf("pgoutput: delete: unexpected tuple tag %q", tag)
		}
		m.OldIsKey = tag == 'K'
		m.Old = decodeTuple(r, &m.oldBuf)
	case KindTruncate:
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
	case KindMessage:
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

func decodeRelation(r *reader) *Relation {
	rel := &Relation{ID: r.uint32(), Namespace: r.cstring(), Name: r.cstring(), ReplicaIdentity: r.byte1()}
	n := int(r.int16())
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = errShort
		return nil
	}
	rel.Columns = make([]Column, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		flags := r.byte1()
		rel.Columns = append(rel.Columns, Column{Key: flags&1 != 0, Name: r.cstring(), TypeOID: r.uint32(), TypMod: int32(r.uint32())})
	}
	return rel
}

func decodeTuple(r *reader, buf *[]Cell) []Cell {
	n := int(r.int16())
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = errShort
		return nil
	}
	cells := (*buf)[:0]
	for i := 0; i < n && r.err == nil; i++ {
		c := Cell{State: r.byte1()}
		switch c.State {
		case CellNull, CellUnchanged:
		case CellText, CellBinary:
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
