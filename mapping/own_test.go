package mapping

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"unsafe"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator"
)

// rowBuffer lays rows out in one buffer, as the decoder leaves a message's
// cells pointing into the frame it read.
type rowBuffer struct{ b []byte }

func newRowBuffer() *rowBuffer { return &rowBuffer{b: make([]byte, 0, 8<<20)} }

// row makes cells of vals: "\x00u" is an unchanged value, "\x00n" NULL.
func (r *rowBuffer) row(vals ...string) []replicator.Cell {
	out := make([]replicator.Cell, len(vals))
	for i, v := range vals {
		switch v {
		case "\x00u":
			out[i] = replicator.Cell{State: replicator.CellUnchanged}
		case "\x00n":
			out[i] = replicator.Cell{State: replicator.CellNull}
		default:
			if len(r.b)+len(v) > cap(r.b) {
				panic("rowBuffer is full")
			}
			start := len(r.b)
			r.b = append(r.b, v...)
			out[i] = replicator.Cell{State: replicator.CellText, Data: r.b[start:len(r.b):len(r.b)]}
		}
	}
	return out
}

// scribble overwrites the whole buffer, as the next message would.
func (r *rowBuffer) scribble() {
	b := r.b[:cap(r.b)]
	for i := range b {
		b[i] = 'Z'
	}
}

// describeRecord renders every value of rec, so that a later change of
// its bytes shows.
func describeRecord(rec replicator.Record) string {
	var s strings.Builder
	fmt.Fprintf(&s, "%s lsn=%d key:", rec.Op, rec.LSN)
	for _, f := range rec.Key {
		fmt.Fprintf(&s, " %s=%s:%q", f.Name, f.Value.Kind, f.Value.Raw)
	}
	s.WriteString(" fields:")
	for _, f := range rec.Fields {
		fmt.Fprintf(&s, " %s=%s:%q", f.Name, f.Value.Kind, f.Value.Raw)
	}
	return s.String()
}

// held is what a record's own allocations come to: its field arrays and the
// bytes of its values (counted once when Key and Fields share them).
func held(rec replicator.Record) int {
	n := (cap(rec.Key) + cap(rec.Fields)) * int(unsafe.Sizeof(replicator.Field{}))
	seen := map[*byte]bool{}
	for _, fs := range [][]replicator.Field{rec.Key, rec.Fields} {
		for _, f := range fs {
			if len(f.Value.Raw) > 0 && !seen[&f.Value.Raw[0]] {
				seen[&f.Value.Raw[0]] = true
				n += len(f.Value.Raw)
			}
		}
	}
	return n
}

// Design invariant 4: a record owns the bytes it keeps and the budget
// charges them. A change whose row has a 1 MiB column the mapping leaves out
// (in the new row, or in the old row of REPLICA IDENTITY FULL, or in a row
// read after a key change) builds records that keep nothing of the message
// or the read row: overwriting those buffers leaves the records as they
// were, and Size covers what each record holds, not the column left out.
func TestRecordsOwnTheirBytes(t *testing.T) {
	big := strings.Repeat("b", 1<<20)
	const at = "2024-01-02 03:04:05.123456+00"
	tests := []struct {
		name     string
		required bool // name must be in every insert: unchanged values are filled in
		msg      func(m *rowBuffer) *replicator.Message
		want     int // records
	}{
		{"insert", false, func(m *rowBuffer) *replicator.Message {
			return &replicator.Message{Kind: replicator.MessageInsert, New: m.row("1", "2", at, big, "one")}
		}, 1},
		{"update with the old row", false, func(m *rowBuffer) *replicator.Message {
			return &replicator.Message{Kind: replicator.MessageUpdate, Old: m.row("1", "2", at, big, "one"), New: m.row("1", "3", at, "\x00u", "one")}
		}, 1},
		{"update filled in from the old row", true, func(m *rowBuffer) *replicator.Message {
			return &replicator.Message{Kind: replicator.MessageUpdate, Old: m.row("1", "2", at, big, "one"), New: m.row("1", "3", at, "\x00u", "\x00u")}
		}, 1},
		{"key change read back from the source", false, func(m *rowBuffer) *replicator.Message {
			return &replicator.Message{Kind: replicator.MessageUpdate, Old: m.row("1", "2", at, big, "one"), New: m.row("7", "3", at, big, "\x00u")}
		}, 2},
		{"delete of the old row", false, func(m *rowBuffer) *replicator.Message {
			return &replicator.Message{Kind: replicator.MessageDelete, Old: m.row("1", "2", at, big, "one")}
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule := &Rule{Source: "public.t", Target: "mem", Table: "t", Key: []string{"id"}, OnDelete: DeleteRow,
				Columns: []ColumnRule{{Source: "id", Target: "id"}, {Source: "n", Target: "n"}, {Source: "at", Target: "at"}, {Source: "name", Target: "name"}}}
			if tt.required {
				rule.Required = map[string]bool{"name": true}
			}
			rel := &replicator.Relation{ID: 1, Namespace: "public", Name: "t", ReplicaIdentity: 'f', Columns: []replicator.Column{
				{Name: "id", TypeOID: pgtype.Int8OID, Key: true}, {Name: "n", TypeOID: pgtype.Int4OID, Key: true},
				{Name: "at", TypeOID: pgtype.TimestamptzOID, Key: true}, {Name: "blob", TypeOID: pgtype.TextOID, Key: true},
				{Name: "name", TypeOID: pgtype.TextOID, Key: true}}}
			msgBuf, readBuf := newRowBuffer(), newRowBuffer()
			fetch := func(context.Context, *replicator.Relation, []string, [][]byte) ([]replicator.Cell, bool, error) {
				return readBuf.row("7", "3", at, big, "seven"), true, nil
			}
			m := NewMapper([]*Rule{rule}, fetch, slog.New(slog.DiscardHandler))
			require.NoError(t, m.Relation(t.Context(), rel))
			msg := tt.msg(msgBuf)
			msg.RelationID = 1
			var recs []replicator.Record
			require.NoError(t, m.Change(t.Context(), msg, 10, func(_ *Table, rec replicator.Record) error {
				recs = append(recs, rec)
				return nil
			}))
			require.Len(t, recs, tt.want)
			before := make([]string, len(recs))
			for i, rec := range recs {
				before[i] = describeRecord(rec)
			}
			msgBuf.scribble()
			readBuf.scribble()
			for i, rec := range recs {
				require.Equal(t, before[i], describeRecord(rec), "the record must not keep bytes of the message or of the row read")
				require.GreaterOrEqual(t, rec.Size(), held(rec), "Size must charge what the record holds")
				require.Less(t, rec.Size(), 4096, "Size charges the record's bytes, not the column it left out")
			}
		})
	}
}

// A snapshot resumes after the last row's key, and a key change reads the
// row by its new key: the key text must not keep the row's buffer alive.
func TestKeyTextIsACopy(t *testing.T) {
	tbl := stampTable(t, "id")
	buf := newRowBuffer()
	row := buf.row("7", "2024-01-01 00:00:00+00", strings.Repeat("n", 1<<20))
	key := tbl.KeyText(row)
	buf.scribble()
	require.Equal(t, [][]byte{[]byte("7")}, key)
}

// Design invariant 4, the budget's side: a row's values share one buffer,
// sized for the longest forms they may take (a timestamp's RFC 3339 text,
// an array's JSON), and the record keeps all of it alive, the room its
// values left unused included. Size charges the buffer's capacity.
func TestSizeChargesTheWholeArena(t *testing.T) {
	tests := []struct {
		name   string
		oid    uint32
		format string
		text   string
	}{
		{"timestamptz", pgtype.TimestamptzOID, "", "2024-01-02 03:04:05.123456+00"},
		{"timestamp", pgtype.TimestampOID, "", "2024-01-02 03:04:05.123456"},
		{"array", pgtype.Int4ArrayOID, "", "{1,2,3,4,5,6,7,8}"},
		{"json format", pgtype.TimestamptzOID, FormatJSON, "2024-01-02 03:04:05+05:30"},
		{"unix_ms format", pgtype.TimestamptzOID, FormatUnixMS, "2024-01-02 03:04:05+00"},
		{"text", pgtype.TextOID, "", "some text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule := &Rule{Source: "public.t", Target: "mem", Table: "t", Key: []string{"id"}, OnDelete: DeleteRow,
				Columns: []ColumnRule{{Source: "id", Target: "id"}}}
			rel := &replicator.Relation{Namespace: "public", Name: "t", Columns: []replicator.Column{{Name: "id", TypeOID: pgtype.Int8OID}}}
			vals := []string{"7"}
			for i := range 8 {
				c := fmt.Sprintf("c%d", i)
				rule.Columns = append(rule.Columns, ColumnRule{Source: c, Target: c, Format: tt.format})
				rel.Columns = append(rel.Columns, replicator.Column{Name: c, TypeOID: tt.oid, TypMod: -1})
				vals = append(vals, tt.text)
			}
			tbl, err := Compile(rule, rel, nil, slog.New(slog.DiscardHandler))
			require.NoError(t, err)
			row := cells(vals...)
			rec, err := tbl.Upsert(row, 1)
			require.NoError(t, err)
			require.Empty(t, rec.Rejected)
			bare := (&replicator.Record{}).Size()
			arrays := (cap(rec.Key) + cap(rec.Fields)) * int(unsafe.Sizeof(replicator.Field{}))
			arena := tbl.arena(row)
			require.GreaterOrEqual(t, rec.Size()-bare, arrays+cap(arena.buf), "Size must charge the whole buffer the values share")
		})
	}
}
