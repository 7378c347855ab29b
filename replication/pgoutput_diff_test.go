package replication

import (
	"bytes"
	"testing"

	"github.com/jackc/pglogrepl"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
)

// fuzzSource hands out values from the fuzz input, and zeros once it is used up.
type fuzzSource struct{ b []byte }

func (f *fuzzSource) u8() byte {
	if len(f.b) == 0 {
		return 0
	}
	v := f.b[0]
	f.b = f.b[1:]
	return v
}

func (f *fuzzSource) u32() uint32 {
	return uint32(f.u8())<<24 | uint32(f.u8())<<16 | uint32(f.u8())<<8 | uint32(f.u8())
}

func (f *fuzzSource) u64() uint64 { return uint64(f.u32())<<32 | uint64(f.u32()) }

// pgTime is a commit time both decoders can represent: seconds since 2000 in microseconds.
func (f *fuzzSource) pgTime() uint64 { return uint64(f.u32()) * 1_000_000 }

// bytes returns up to 15 bytes of any value.
func (f *fuzzSource) bytes() []byte {
	n := min(int(f.u8()%16), len(f.b))
	v := f.b[:n]
	f.b = f.b[n:]
	return v
}

// str returns a string without NUL bytes, as the protocol's strings are.
func (f *fuzzSource) str() string {
	return string(bytes.ReplaceAll(f.bytes(), []byte{0}, []byte{'0'}))
}

// validMessage builds a well-formed pgoutput (protocol 1) message from the
// fuzz input: every field comes from it, every length is right.
func validMessage(f *fuzzSource) []byte {
	// Tuples have a column at least: a zero-column tuple is valid
	// protocol that pglogrepl refuses, and no published table has one.
	tuple := func(b msgBuilder) msgBuilder {
		n := 1 + int(f.u8()%5)
		b = b.u16(int16(n))
		for i := 0; i < n; i++ {
			switch state := "ntub"[f.u8()%4]; state {
			case 't', 'b':
				d := f.bytes()
				b = append(b.u8(state).u32(uint32(len(d))), d...)
			default:
				b = b.u8(state)
			}
		}
		return b
	}
	switch f.u8() % 10 {
	case 0:
		return msgBuilder{'B'}.u64(f.u64()).u64(f.pgTime()).u32(f.u32())
	case 1:
		return msgBuilder{'C'}.u8(0).u64(f.u64()).u64(f.u64()).u64(f.pgTime())
	case 2:
		return msgBuilder{'O'}.u64(f.u64()).str(f.str())
	case 3:
		b := msgBuilder{'R'}.u32(f.u32()).str(f.str()).str(f.str()).u8("dfin"[f.u8()%4])
		n := int(f.u8() % 5)
		b = b.u16(int16(n))
		for i := 0; i < n; i++ {
			b = b.u8(f.u8() % 2).str(f.str()).u32(f.u32()).u32(f.u32())
		}
		return b
	case 4:
		return msgBuilder{'Y'}.u32(f.u32()).str(f.str()).str(f.str())
	case 5:
		return tuple(msgBuilder{'I'}.u32(f.u32()).u8('N'))
	case 6:
		b := msgBuilder{'U'}.u32(f.u32())
		if old := f.u8() % 3; old != 0 {
			b = tuple(b.u8("KO"[old-1]))
		}
		return tuple(b.u8('N'))
	case 7:
		return tuple(msgBuilder{'D'}.u32(f.u32()).u8("KO"[f.u8()%2]))
	case 8:
		n := 1 + int(f.u8()%3) // the server truncates one table at least
		b := msgBuilder{'T'}.u32(uint32(n)).u8(f.u8() % 4)
		for i := 0; i < n; i++ {
			b = b.u32(f.u32())
		}
		return b
	default:
		content := f.bytes()
		b := msgBuilder{'M'}.u8(f.u8() % 2).u64(f.u64()).str(f.str()).u32(uint32(len(content)))
		return append(b, content...)
	}
}

// requireSameTuple compares a decoded tuple with pglogrepl's.
func requireSameTuple(t *testing.T, want *pglogrepl.TupleData, got []replicator.Cell) {
	t.Helper()
	if want == nil {
		require.Nil(t, got)
		return
	}
	require.Len(t, got, int(want.ColumnNum))
	for i, c := range want.Columns {
		require.Equal(t, c.DataType, got[i].State, "cell %d", i)
		require.True(t, bytes.Equal(c.Data, got[i].Data), "cell %d: %q, pglogrepl %q", i, got[i].Data, c.Data)
	}
}

// requireSameMessage compares a decoded message with pglogrepl's.
func requireSameMessage(t *testing.T, want pglogrepl.Message, got *replicator.Message) {
	t.Helper()
	require.Equal(t, replicator.MessageKind(want.Type()), got.Kind)
	switch w := want.(type) {
	case *pglogrepl.BeginMessage:
		require.Equal(t, replicator.LSN(w.FinalLSN), got.LSN)
		require.True(t, w.CommitTime.Equal(got.Time), "commit time %s, pglogrepl %s", got.Time, w.CommitTime)
		require.Equal(t, w.Xid, got.Xid)
	case *pglogrepl.CommitMessage:
		require.Equal(t, replicator.LSN(w.CommitLSN), got.LSN)
		require.Equal(t, replicator.LSN(w.TransactionEndLSN), got.EndLSN)
		require.True(t, w.CommitTime.Equal(got.Time), "commit time %s, pglogrepl %s", got.Time, w.CommitTime)
	case *pglogrepl.OriginMessage:
		require.Equal(t, replicator.LSN(w.CommitLSN), got.LSN)
		require.Equal(t, w.Name, got.Prefix)
	case *pglogrepl.RelationMessage:
		r := got.Relation
		require.Equal(t, w.RelationID, r.ID)
		require.Equal(t, w.Namespace, r.Namespace)
		require.Equal(t, w.RelationName, r.Name)
		require.Equal(t, w.ReplicaIdentity, r.ReplicaIdentity)
		require.Len(t, r.Columns, int(w.ColumnNum))
		for i, c := range w.Columns {
			require.Equal(t, replicator.Column{Name: c.Name, TypeOID: c.DataType, TypMod: c.TypeModifier, Key: c.Flags == 1}, r.Columns[i])
		}
	case *pglogrepl.TypeMessage:
	case *pglogrepl.InsertMessage:
		require.Equal(t, w.RelationID, got.RelationID)
		require.Nil(t, got.Old)
		requireSameTuple(t, w.Tuple, got.New)
	case *pglogrepl.UpdateMessage:
		require.Equal(t, w.RelationID, got.RelationID)
		require.Equal(t, w.OldTupleType == pglogrepl.UpdateMessageTupleTypeKey, got.OldIsKey)
		requireSameTuple(t, w.OldTuple, got.Old)
		requireSameTuple(t, w.NewTuple, got.New)
	case *pglogrepl.DeleteMessage:
		require.Equal(t, w.RelationID, got.RelationID)
		require.Equal(t, w.OldTupleType == pglogrepl.DeleteMessageTupleTypeKey, got.OldIsKey)
		requireSameTuple(t, w.OldTuple, got.Old)
		require.Nil(t, got.New)
	case *pglogrepl.TruncateMessage:
		require.Equal(t, int(w.RelationNum), len(got.RelationIDs))
		require.Equal(t, w.RelationIDs[:w.RelationNum], got.RelationIDs)
		require.Equal(t, w.Option&pglogrepl.TruncateOptionCascade != 0, got.Cascade)
		require.Equal(t, w.Option&pglogrepl.TruncateOptionRestartIdentity != 0, got.RestartIdentity)
	case *pglogrepl.LogicalDecodingMessage:
		require.Equal(t, replicator.LSN(w.LSN), got.LSN)
		require.Equal(t, w.Transactional, got.Transactional)
		require.Equal(t, w.Prefix, got.Prefix)
		require.True(t, bytes.Equal(w.Content, got.Content))
	default:
		t.Fatalf("pglogrepl decoded an unexpected %T", want)
	}
}

// FuzzDecoderMatchesPglogrepl builds valid pgoutput messages of every kind
// from the fuzz input and checks that the project's decoder reads each as
// pglogrepl.Parse does (which only valid input may be given: it panics on
// truncated messages).
func FuzzDecoderMatchesPglogrepl(f *testing.F) {
	for kind := byte(0); kind < 10; kind++ {
		f.Add([]byte{kind})
		f.Add(append([]byte{kind}, bytes.Repeat([]byte{0x41, 0xFF, 0x00, 0x07, 0x80}, 12)...))
	}
	// An update with an old key of a text, an unchanged TOAST and a null
	// cell, and a new row of a binary, a null and an unchanged TOAST cell.
	// (Cell states: 0 'n', 1 't', 2 'u', 3 'b'; a tuple has 1+n%5 cells.)
	f.Add([]byte{6, 0, 0, 0, 9, 1, 2, 1, 3, 'a', 'b', 'c', 2, 0, 2, 3, 2, 'x', 'y', 0, 2})
	// A transactional logical message "hi!" with prefix "pref" at 0/2A.
	f.Add([]byte{9, 3, 'h', 'i', '!', 1, 0, 0, 0, 0, 0, 0, 0, 42, 4, 'p', 'r', 'e', 'f'})
	f.Fuzz(func(t *testing.T, data []byte) {
		msg := validMessage(&fuzzSource{b: data})
		want, err := pglogrepl.Parse(msg)
		require.NoError(t, err, "pglogrepl refused a valid message %x", msg)
		var got replicator.Message
		require.NoError(t, new(Decoder).Decode(msg, &got), "message %x", msg)
		requireSameMessage(t, want, &got)
	})
}
