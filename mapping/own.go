package mapping

import (
	"bytes"

	"github.com/replicator-cdc/replicator"
)

// own copies the bytes rec keeps into one buffer of its own. Until then its
// values may point into the row they were read from: a decoded message
// (with the columns the mapping leaves out and, under REPLICA IDENTITY
// FULL, the whole old row) or a row read from the source. A record that
// shares such a buffer would keep all of it alive in the pipeline while the
// byte budget charges only the mapped values (design invariant 4).
//
// A key value is the same text as its field's value, so it shares the
// field's copy. Rejected values are left as they are: the pipeline writes
// them to the dead letters and drops them before the record is batched.
func own(rec *replicator.Record) {
	n := 0
	for _, f := range rec.Fields {
		n += len(f.Value.Raw)
	}
	for _, k := range rec.Key {
		if shared(rec.Fields, k) == nil {
			n += len(k.Value.Raw)
		}
	}
	if n == 0 {
		return
	}
	buf := make([]byte, 0, n)
	take := func(raw []byte) []byte {
		if len(raw) == 0 {
			return nil
		}
		start := len(buf)
		buf = append(buf, raw...)
		return buf[start:len(buf):len(buf)]
	}
	for i := range rec.Fields {
		rec.Fields[i].Value.Raw = take(rec.Fields[i].Value.Raw)
	}
	for i, k := range rec.Key {
		if raw := shared(rec.Fields, k); raw != nil {
			rec.Key[i].Value.Raw = raw
		} else {
			rec.Key[i].Value.Raw = take(k.Value.Raw)
		}
	}
}

// ownKey gives rec's key values the copies its fields already own (Upsert
// copies the fields into its arena), copying only a key value no field
// holds.
func ownKey(rec *replicator.Record) {
	for i, k := range rec.Key {
		if raw := shared(rec.Fields, k); raw != nil {
			rec.Key[i].Value.Raw = raw
		} else if len(k.Value.Raw) > 0 {
			rec.Key[i].Value.Raw = bytes.Clone(k.Value.Raw)
		}
	}
}

// shared returns the value of the field that holds key's text, or nil.
func shared(fields []replicator.Field, key replicator.Field) []byte {
	if len(key.Value.Raw) == 0 {
		return nil
	}
	for _, f := range fields {
		if f.Name == key.Name && f.Value.Kind == key.Value.Kind && bytes.Equal(f.Value.Raw, key.Value.Raw) {
			return f.Value.Raw
		}
	}
	return nil
}
