package gptbots

import (
	"bytes"
	"fmt"
	"time"

	"github.com/replicator-cdc/replicator"
)

// item is one record encoded as an update_data or delete_data entry.
type item struct {
	rec *replicator.Record
	// key is the filter value's text, to match fail_detail entries.
	key  string
	data []byte
}

// filter encodes the record's key as {"filter":{<key>:<value>}, leaving the
// outer object open.
func (s *schema) filter(rec *replicator.Record, loc *time.Location) ([]byte, string, error) {
	if len(rec.Key) != 1 {
		return nil, "", fmt.Errorf("the record's key has %d values; the table's key is the single field %q", len(rec.Key), s.key)
	}
	v := rec.Key[0].Value
	if v.IsNull() {
		return nil, "", fmt.Errorf("key field %q is null", s.key)
	}
	enc, err := encodeValue(nil, v, s.keyType, loc)
	if err != nil {
		return nil, "", fmt.Errorf("key field %q: %w", s.key, err)
	}
	if n := textLen(v, s.keyType, enc); n > maxUniqueChars {
		return nil, "", fmt.Errorf("key field %q: value has %d characters; GPTBots unique fields hold at most %d", s.key, n, maxUniqueChars)
	}
	b := append([]byte(`{"filter":{`), replicator.AppendJSONString(nil, []byte(s.key))...)
	b = append(b, ':')
	b = append(b, enc...)
	return append(b, '}'), keyText(enc), nil
}

// deleteItem encodes {"filter":{<key>:<value>}}.
func (s *schema) deleteItem(rec *replicator.Record, loc *time.Location) (item, error) {
	b, key, err := s.filter(rec, loc)
	if err != nil {
		return item{}, err
	}
	return item{rec: rec, key: key, data: append(b, '}')}, nil
}

// upsertItem encodes {"filter":{…},"updated_fields":{…}}. Fields the record
// does not carry (unchanged TOASTed values) are left out; the key is always
// written, so that an inserted row has it whatever the API does with the
// filter. A value its field cannot hold is left out as well and comes back
// in refused, so that the rest of the row (and every later change of it)
// still lands.
func (s *schema) upsertItem(rec *replicator.Record, loc *time.Location) (it item, refused []replicator.Rejection, err error) {
	b, key, err := s.filter(rec, loc)
	if err != nil {
		return item{}, nil, err
	}
	b = append(b, `,"updated_fields":{`...)
	hasKey, empty := false, true
	for _, f := range rec.Fields {
		typ, ok := s.types[f.Name]
		if !ok {
			return item{}, nil, fmt.Errorf("field %q is not a mapped field of the table", f.Name)
		}
		mark := b
		if !empty {
			b = append(b, ',')
		}
		b = replicator.AppendJSONString(b, []byte(f.Name))
		b = append(b, ':')
		out, err := s.appendField(b, f, typ, loc)
		if err != nil {
			refused = append(refused, replicator.Rejection{Record: *rec, Column: f.Name, Value: f.Value.Raw,
				Reason: "cannot encode for GPTBots: " + replicator.Abbreviate(err.Error(), maxReasonBytes)})
			b = mark
			continue
		}
		b, empty = out, false
		hasKey = hasKey || f.Name == s.key
	}
	if !hasKey {
		if !empty {
			b = append(b, ',')
		}
		b = replicator.AppendJSONString(b, []byte(s.key))
		b = append(b, ':')
		b, _ = encodeValue(b, rec.Key[0].Value, s.keyType, loc)
	}
	return item{rec: rec, key: key, data: append(b, "}}"...)}, refused, nil
}

// maxReasonBytes bounds an encoding error quoted in a rejection: it may
// quote the value.
const maxReasonBytes = 512

// appendField appends f's value as its field of type typ takes it.
func (s *schema) appendField(dst []byte, f replicator.Field, typ string, loc *time.Location) ([]byte, error) {
	start := len(dst)
	dst, err := encodeValue(dst, f.Value, typ, loc)
	if err != nil {
		return nil, fmt.Errorf("field %q: %w", f.Name, err)
	}
	if n := textLen(f.Value, typ, dst[start:]); s.unique[f.Name] && !f.Value.IsNull() && n > maxUniqueChars {
		return nil, fmt.Errorf("unique field %q: value has %d characters; GPTBots unique fields hold at most %d", f.Name, n, maxUniqueChars)
	}
	return dst, nil
}

// keyText is the text of a JSON scalar: a string's contents, a literal as
// written. The API may echo a filter value as a string or a number, so both
// forms of one value must compare equal.
func keyText(raw []byte) string {
	if len(raw) == 0 || raw[0] != '"' {
		// A number, literal or anything else reads as written.
		return string(raw)
	}
	if len(raw) >= 2 && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		// A string without escapes (and so valid UTF-8 as encoded): its
		// contents, without a decoder per item.
		return string(raw[1 : len(raw)-1])
	}
	var v string
	if err := decodeNumber(raw, &v); err != nil {
		return string(raw)
	}
	return v
}
