package replication

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
)

// msgBuilder writes pgoutput messages the way the server does.
type msgBuilder []byte

func (b msgBuilder) u8(v byte) msgBuilder { return append(b, v) }
func (b msgBuilder) u16(v int16) msgBuilder {
	return binary.BigEndian.AppendUint16(b, uint16(v))
}
func (b msgBuilder) u32(v uint32) msgBuilder { return binary.BigEndian.AppendUint32(b, v) }
func (b msgBuilder) u64(v uint64) msgBuilder { return binary.BigEndian.AppendUint64(b, v) }
func (b msgBuilder) str(s string) msgBuilder { return append(append(b, s...), 0) }
func (b msgBuilder) text(s string) msgBuilder {
	return append(b.u8('t').u32(uint32(len(s))), s...)
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want func(t *testing.T, m *replicator.Message)
	}{
		{"begin", msgBuilder{'B'}.u64(0x16B3748).u64(42).u32(777), func(t *testing.T, m *replicator.Message) {
			require.Equal(t, replicator.LSN(0x16B3748), m.LSN)
			require.Equal(t, uint32(777), m.Xid)
		}},
		{"commit", msgBuilder{'C'}.u8(0).u64(10).u64(20).u64(30), func(t *testing.T, m *replicator.Message) {
			require.Equal(t, replicator.LSN(10), m.LSN)
			require.Equal(t, replicator.LSN(20), m.EndLSN)
		}},
		{"relation", msgBuilder{'R'}.u32(16384).str("public").str("t").u8('d').u16(2).
			u8(1).str("id").u32(20).u32(0xFFFFFFFF).
			u8(0).str("body").u32(25).u32(0xFFFFFFFF), func(t *testing.T, m *replicator.Message) {
			require.Equal(t, "public.t", m.Relation.QualifiedName())
			require.Equal(t, []replicator.Column{{Name: "id", TypeOID: 20, TypMod: -1, Key: true}, {Name: "body", TypeOID: 25, TypMod: -1}}, m.Relation.Columns)
		}},
		{"insert with null", msgBuilder{'I'}.u32(16384).u8('N').u16(2).text("1").u8('n'), func(t *testing.T, m *replicator.Message) {
			require.Equal(t, uint32(16384), m.RelationID)
			require.Equal(t, []replicator.Cell{{State: replicator.CellText, Data: []byte("1")}, {State: replicator.CellNull}}, m.New)
			require.Nil(t, m.Old)
		}},
		{"update keeps unchanged toast distinct from null", msgBuilder{'U'}.u32(1).u8('N').u16(3).text("1").u8('u').u8('n'), func(t *testing.T, m *replicator.Message) {
			require.Equal(t, []replicator.Cell{{State: replicator.CellText, Data: []byte("1")}, {State: replicator.CellUnchanged}, {State: replicator.CellNull}}, m.New)
		}},
		{"update with old key", msgBuilder{'U'}.u32(1).u8('K').u16(1).text("1").u8('N').u16(1).text("2"), func(t *testing.T, m *replicator.Message) {
			require.True(t, m.OldIsKey)
			require.Equal(t, "1", string(m.Old[0].Data))
			require.Equal(t, "2", string(m.New[0].Data))
		}},
		{"delete full row", msgBuilder{'D'}.u32(1).u8('O').u16(1).text("9"), func(t *testing.T, m *replicator.Message) {
			require.False(t, m.OldIsKey)
			require.Equal(t, "9", string(m.Old[0].Data))
		}},
		{"truncate", msgBuilder{'T'}.u32(2).u8(3).u32(5).u32(6), func(t *testing.T, m *replicator.Message) {
			require.Equal(t, []uint32{5, 6}, m.RelationIDs)
			require.True(t, m.Cascade)
			require.True(t, m.RestartIdentity)
		}},
		{"logical message", msgBuilder{'M'}.u8(0).u64(99).str("replicator_heartbeat").u32(2).u8('h').u8('i'), func(t *testing.T, m *replicator.Message) {
			require.False(t, m.Transactional)
			require.Equal(t, replicator.LSN(99), m.LSN)
			require.Equal(t, "replicator_heartbeat", m.Prefix)
			require.Equal(t, "hi", string(m.Content))
		}},
		{"type", msgBuilder{'Y'}.u32(1).str("public").str("mood"), func(t *testing.T, m *replicator.Message) {
			require.Equal(t, replicator.MessageType, m.Kind)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m replicator.Message
			require.NoError(t, new(Decoder).Decode(tt.data, &m))
			tt.want(t, &m)
		})
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	bad := map[string][]byte{
		"empty":               {},
		"unknown type":        {'Z'},
		"short begin":         msgBuilder{'B'}.u64(1),
		"unterminated string": msgBuilder{'R'}.u32(1).str("public")[:8],
		"bad tuple tag":       msgBuilder{'I'}.u32(1).u8('X'),
		"bad column state":    msgBuilder{'I'}.u32(1).u8('N').u16(1).u8('q'),
		"length past end":     msgBuilder{'I'}.u32(1).u8('N').u16(1).u8('t').u32(100),
		"negative length":     msgBuilder{'I'}.u32(1).u8('N').u16(1).u8('t').u32(0xFFFFFFF0),
		"column count lies":   msgBuilder{'I'}.u32(1).u8('N').u16(300),
		"truncate count lies": msgBuilder{'T'}.u32(1000000).u8(0),
	}
	for name, data := range bad {
		t.Run(name, func(t *testing.T) {
			var m replicator.Message
			require.Error(t, new(Decoder).Decode(data, &m))
		})
	}
}

func TestDecodeReusesTupleBuffers(t *testing.T) {
	var d Decoder
	var m replicator.Message
	first := msgBuilder{'I'}.u32(1).u8('N').u16(2).text("a").text("b")
	require.NoError(t, d.Decode(first, &m))
	firstCells := &m.New[0]
	require.NoError(t, d.Decode(msgBuilder{'B'}.u64(1).u64(2).u32(3), &m))
	require.NoError(t, d.Decode(msgBuilder{'I'}.u32(1).u8('N').u16(2).text("c").text("d"), &m))
	require.Same(t, firstCells, &m.New[0])
	require.Equal(t, "c", string(m.New[0].Data))
	require.Equal(t, "a", string(first[13:14]), "decoding must not write into the message buffer")
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(msgBuilder{'I'}.u32(1).u8('N').u16(2).text("1").u8('n')))
	f.Add([]byte(msgBuilder{'U'}.u32(1).u8('K').u16(1).text("1").u8('N').u16(1).u8('u')))
	f.Add([]byte(msgBuilder{'R'}.u32(1).str("s").str("t").u8('f').u16(1).u8(1).str("c").u32(23).u32(0)))
	f.Add([]byte(msgBuilder{'T'}.u32(1).u8(0).u32(7)))
	f.Add([]byte(msgBuilder{'M'}.u8(1).u64(1).str("p").u32(1).u8('x')))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m replicator.Message
		if err := new(Decoder).Decode(data, &m); err != nil {
			return
		}
		for _, c := range append(append([]replicator.Cell(nil), m.Old...), m.New...) {
			if c.State == replicator.CellText && len(c.Data) > len(data) {
				t.Fatalf("cell longer than the message")
			}
		}
	})
}

// BenchmarkDecode decodes a transaction's messages: Begin, an Update with
// its old key and seven columns, Commit. It must not allocate.
func BenchmarkDecode(b *testing.B) {
	tuple := func(m msgBuilder, id string) msgBuilder {
		m = m.u16(7).text(id).text("name " + id).text("7").text("12.50").text(`{"g": 1}`).text("2024-01-02 03:04:05.123456+00")
		return m.u8('u')
	}
	msgs := [][]byte{
		msgBuilder{'B'}.u64(0x16B3748).u64(42).u32(777),
		tuple(msgBuilder{'U'}.u32(1).u8('O'), "1").u8('N'),
		msgBuilder{'C'}.u8(0).u64(10).u64(20).u64(30),
	}
	msgs[1] = tuple(msgs[1], "2")
	var dec Decoder
	var m replicator.Message
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		for _, d := range msgs {
			if err := dec.Decode(d, &m); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// The decoder's reused cells must not keep a transaction's frames alive
// after it ends (design invariant 4: an old row of REPLICA IDENTITY FULL
// could be megabytes).
func TestDecodeDropsCellsAtCommit(t *testing.T) {
	var d Decoder
	var m replicator.Message
	require.NoError(t, d.Decode(msgBuilder{'U'}.u32(1).u8('O').u16(2).text("1").text("old").u8('N').u16(2).text("1").u8('u'), &m))
	require.NoError(t, d.Decode(msgBuilder{'C'}.u8(0).u64(10).u64(20).u64(30), &m))
	for _, c := range append(d.oldBuf[:cap(d.oldBuf)], d.newBuf[:cap(d.newBuf)]...) {
		require.Nil(t, c.Data)
	}
}
