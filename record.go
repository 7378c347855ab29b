package replicator

import (
	"context"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Op is what a record does to its target row.
type Op uint8

const (
	// OpUpsert inserts the row or updates the listed fields of an existing one.
	OpUpsert Op = iota + 1
	// OpDelete removes the row identified by the key.
	OpDelete
)

func (o Op) String() string {
	switch o {
	case OpUpsert:
		return "upsert"
	case OpDelete:
		return "delete"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Record is one write to one target row, already mapped: target column names
// and normalized values.
type Record struct {
	Op Op
	// Key holds the conflict key's values under their target names, in
	// TableSpec.Key order. It identifies the target row.
	Key []Field
	// Fields are the columns an upsert sets, key columns included. A column
	// whose value the source did not send (an unchanged TOASTed value) is
	// absent, never null: writers must leave it untouched on the target.
	Fields []Field
	// LSN is the commit position of the source transaction (0 for snapshot rows).
	LSN LSN
	// Rejected lists values the mapping could not encode for the target.
	// They are left out of Fields, so the target keeps its previous value,
	// and are dead-lettered before the record's transaction is acknowledged.
	Rejected []ValueRejection
	// Spare is memory the values keep alive beyond their own bytes: room
	// left unused in the buffer they share (the mapping sizes it for the
	// longest forms a row's values may take). Size charges it.
	Spare int
}

// ValueRejection is one column value that cannot be written as it stands.
type ValueRejection struct {
	// Column is the target column's name.
	Column string
	// Value is the value's text as it came (the source text when the
	// mapping refused it). It may point into the row the mapping read: the
	// pipeline dead-letters it and drops it before the record is batched.
	Value  []byte
	Reason string
}

// KeyString is a canonical encoding of the key, equal for two records exactly
// when they address the same target row.
func (r *Record) KeyString() string {
	n := 0
	for _, f := range r.Key {
		n += len(f.Value.Raw) + 8
	}
	b := make([]byte, 0, n)
	for _, f := range r.Key {
		b = append(b, byte(f.Value.Kind))
		b = strconv.AppendInt(b, int64(len(f.Value.Raw)), 10)
		b = append(b, ':')
		b = append(b, f.Value.Raw...)
	}
	return string(b)
}

// Size is the memory a record holds, for the in-flight byte budget: the
// record in its batch and its entry in the batch's key index, its field
// arrays, the bytes of its values and the Spare room of their buffer. It
// is what the record really holds only when the record owns its bytes, as
// the mapping's records do: values pointing into a larger buffer keep all
// of that buffer alive. Names are the mapping's, shared by every record,
// and not charged.
func (r *Record) Size() int {
	n := recordOverhead + (cap(r.Key)+cap(r.Fields))*fieldSize + cap(r.Rejected)*rejectionSize + r.Spare
	for _, f := range r.Key {
		// The value, and the batch index's copy of the key.
		n += 2*len(f.Value.Raw) + 8
	}
	for _, f := range r.Fields {
		n += len(f.Value.Raw)
	}
	for _, v := range r.Rejected {
		n += len(v.Value) + len(v.Reason)
	}
	return n
}

const (
	fieldSize     = int(unsafe.Sizeof(Field{}))
	rejectionSize = int(unsafe.Sizeof(ValueRejection{}))
	// recordOverhead is a Record in a batch's slice plus its entry in the
	// batch's key index (string header, position, the map's own share).
	recordOverhead = int(unsafe.Sizeof(Record{})) + 64
)

// Field returns the value of the named field and whether the record carries it.
func (r *Record) Field(name string) (Value, bool) {
	for _, f := range r.Fields {
		if f.Name == name {
			return f.Value, true
		}
	}
	return Value{}, false
}

// TableSpec is what a writer needs to know about one mapped target table.
type TableSpec struct {
	// Source is the qualified source table ("public.customers"), for messages.
	Source string
	// Table is the target table: a Feishu table name or a GPTBots table id.
	Table string
	// Key lists the target column names of the conflict key.
	Key []string
	// Columns lists the target names of every mapped column, key included.
	Columns []string
}

// Batch is a set of records for one target table. It holds at most one record
// per key (the batcher coalesces), so the records may be applied in any order;
// batches of one table that share a key are applied one after another in
// commit order, and others may be written concurrently (Write is called
// concurrently for one table).
type Batch struct {
	Table   TableSpec
	Records []Record
}

// Rejection is a permanent verdict on one record or on one of its values:
// the rest of its batch was written; this record (or, when Column is set,
// this value) was not and will never be as it stands.
type Rejection struct {
	Record Record
	// Column names the target column whose value was refused while the rest
	// of the record was written without it; empty when the record as a whole
	// was refused.
	Column string
	// Value is the refused value's text, for a column rejection.
	Value  []byte
	Reason string
}

// Abbreviate cuts s to at most limit bytes (at a UTF-8 boundary) and notes its
// full length, so that messages and dead letters never quote a whole large
// value.
func Abbreviate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// Writer applies batches to one target (one API account). Implementations are
// safe for concurrent use by several tables.
type Writer interface {
	// Prepare checks, before anything is written, that every table exists on
	// the target with every mapped column and a key the target can upsert on.
	// Its error names the table and column and says what to fix.
	Prepare(ctx context.Context, tables []TableSpec) error
	// Write applies the batch. It returns nil once every record is either
	// confirmed by the target or listed in the returned rejections; a value
	// the target cannot hold is a column rejection, and the record is
	// written without it. Transient failures (throttling, timeouts, 5xx,
	// expired tokens) are retried inside Write until ctx ends; any error it
	// returns is fatal for the pipeline and says what the user must do.
	Write(ctx context.Context, batch Batch) ([]Rejection, error)
}
