package replicator

import "time"

// A source's changes reach the mapping as Messages: a transaction is a
// Begin, its row changes and a Commit; Relation messages describe the
// tables the row changes refer to. The PostgreSQL reader (package
// replication) decodes pgoutput into these types; the mapping and the
// pipeline know nothing else about the source.

// MessageKind says what a Message carries. Its values are pgoutput's message
// type bytes, so the PostgreSQL decoder needs no translation table.
type MessageKind byte

// The kinds of Message.
const (
	// MessageBegin opens a transaction; LSN is where it will commit.
	MessageBegin MessageKind = 'B'
	// MessageCommit closes a transaction; EndLSN is the position to acknowledge.
	MessageCommit MessageKind = 'C'
	// MessageOrigin names the origin of a replicated transaction (ignored).
	MessageOrigin MessageKind = 'O'
	// MessageRelation describes a table before its first row change, and
	// again after its columns change.
	MessageRelation MessageKind = 'R'
	// MessageType describes a user-defined type (ignored: types are read
	// from the catalog).
	MessageType     MessageKind = 'Y'
	MessageInsert   MessageKind = 'I'
	MessageUpdate   MessageKind = 'U'
	MessageDelete   MessageKind = 'D'
	MessageTruncate MessageKind = 'T'
	// MessageLogical is an application's message in the stream
	// (pg_logical_emit_message); the daemon's own heartbeats are these.
	MessageLogical MessageKind = 'M'
)

// The states of a Cell.
const (
	CellNull byte = 'n'
	// CellUnchanged is a value the source did not send because the change
	// did not touch it (an unchanged TOASTed value): it is not NULL, and a
	// write must leave it out.
	CellUnchanged byte = 'u'
	// CellText holds the value in the source's text form.
	CellText   byte = 't'
	CellBinary byte = 'b'
)

// Cell is one column of a row. Data belongs to whoever decoded the row (it
// may alias the buffer a message was read into): what must outlive the
// message is copied.
type Cell struct {
	State byte
	Data  []byte
}

// Column describes one column of a relation.
type Column struct {
	Name string
	// TypeOID and TypMod name the column's type in the source's catalog.
	TypeOID uint32
	TypMod  int32
	// Key marks the columns that identify a row in the source (its replica
	// identity): an update's or delete's old row carries at least these.
	Key bool
}

// Relation describes a source table as the stream last announced it.
type Relation struct {
	ID              uint32
	Namespace, Name string
	// ReplicaIdentity is 'd' (default: primary key), 'f' (full), 'i' (index) or 'n' (nothing).
	ReplicaIdentity byte
	Columns         []Column
}

// QualifiedName is "schema.table".
func (r *Relation) QualifiedName() string { return r.Namespace + "." + r.Name }

// Message is one message of a source's change stream. Only the fields of
// its Kind are set. A decoder may reuse a Message and its cell slices for
// the next message, so a consumer must be done with Old and New (not with
// the data they point to) before the next message is decoded.
type Message struct {
	Kind MessageKind

	// Begin: the commit LSN the transaction will end with. Commit: the
	// commit record's LSN. Logical: the message's LSN.
	LSN LSN
	// EndLSN (Commit) is the end of the commit record: the position to acknowledge.
	EndLSN LSN
	// Time is when the transaction committed (Begin, Commit).
	Time time.Time
	Xid  uint32

	// Relation (Relation messages).
	Relation *Relation

	// RelationID (Insert, Update, Delete) names the relation of Old and New.
	RelationID uint32
	// Old is the old key or old row of an Update or Delete, nil when not sent.
	Old []Cell
	// OldIsKey says Old holds only the replica identity columns.
	OldIsKey bool
	New      []Cell

	// Truncate.
	RelationIDs     []uint32
	Cascade         bool
	RestartIdentity bool

	// Logical message.
	Transactional bool
	Prefix        string
	Content       []byte
}

// TypeInfo is what the source's catalog says about a type: enough to tell
// how its values look in text (a domain's base type, an array's element
// type and delimiter).
type TypeInfo struct {
	OID  uint32
	Name string
	// Type is typtype: 'b' base, 'c' composite, 'd' domain, 'e' enum,
	// 'p' pseudo, 'r' range, 'm' multirange.
	Type byte
	// Category is typcategory ('A' array, 'N' numeric, 'S' string, …).
	Category byte
	// Delim separates this type's values as elements of an array.
	Delim byte
	// BaseOID is a domain's underlying type (typbasetype).
	BaseOID uint32
	// ElemOID is an array's element type (typelem).
	ElemOID uint32
}
