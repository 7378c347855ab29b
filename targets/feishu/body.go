package feishu

import (
	"slices"
	"unicode/utf8"

	"github.com/replicator-cdc/replicator"
)

// appendUpsertBody appends {"records":"<JSON array>"}: the rows as one JSON
// document, itself sent as a JSON string. It writes the outer string's
// escaped form directly, in one pass and at most one allocation, instead of
// building the document and escaping it again: the bytes are exactly
// replicator.AppendJSONString of the document replicator.AppendJSON would
// build, so numbers keep their exact digits.
func appendUpsertBody(out []byte, recs []replicator.Record) []byte {
	size := len(`{"records":"[]"}`)
	for i := range recs {
		size += recs[i].Size() + len(recs[i].Fields)*6
	}
	out = slices.Grow(out, size)
	out = append(out, `{"records":"[`...)
	for i := range recs {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '{')
		for j, f := range recs[i].Fields {
			if j > 0 {
				out = append(out, ',')
			}
			out = appendNestedString(out, []byte(f.Name))
			out = append(out, ':')
			out = appendNestedValue(out, f.Value)
		}
		out = append(out, '}')
	}
	return append(out, `]"}`...)
}

// appendNestedValue appends replicator.AppendJSON(v) as it reads inside a
// JSON string.
func appendNestedValue(dst []byte, v replicator.Value) []byte {
	switch v.Kind {
	case replicator.KindNull:
		return append(dst, "null"...)
	case replicator.KindInt, replicator.KindBool, replicator.KindJSON:
		return appendJSONEscaped(dst, v.Raw, false)
	case replicator.KindNumeric, replicator.KindFloat:
		if !replicator.IsNonFinite(v) {
			return appendJSONEscaped(dst, v.Raw, false)
		}
	}
	return appendNestedString(dst, v.Raw)
}

// appendNestedString appends replicator.AppendJSONString(s) as it reads
// inside a JSON string: escaped twice.
func appendNestedString(dst, s []byte) []byte {
	dst = append(dst, '\\', '"')
	dst = appendJSONEscaped(dst, s, true)
	return append(dst, '\\', '"')
}

// plainByte marks the bytes a JSON string carries as they are.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONEscaped appends s escaped by replicator.AppendJSONString's rules
// without the quotes; twice, when double: the escape sequences of the
// first escaping escaped again (a quote becomes \\\", a newline \\n).
func appendJSONEscaped(dst, s []byte, double bool) []byte {
	esc := []byte{'\\'}
	if double {
		esc = []byte{'\\', '\\', '\\'}
	}
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plainByte[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(append(dst, esc...), c)
			case '\n':
				dst = append(append(dst, esc[:len(esc)/2+1]...), 'n')
			case '\r':
				dst = append(append(dst, esc[:len(esc)/2+1]...), 'r')
			case '\t':
				dst = append(append(dst, esc[:len(esc)/2+1]...), 't')
			default:
				dst = append(append(dst, esc[:len(esc)/2+1]...), 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(append(dst, esc[:len(esc)/2+1]...), "ufffd"...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(append(dst, esc[:len(esc)/2+1]...), 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

const hexDigits = "0123456789abcdef"

// maxPooledBody bounds the request bodies kept for reuse.
const maxPooledBody = 4 << 20

// bodyBuffer returns an empty buffer for a request body, reused when one
// is free.
func (w *Writer) bodyBuffer() []byte {
	if b, ok := w.bodies.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

// recycle keeps the body of a request the API confirmed. A confirmed
// answer means the server read the whole body, so the transport is done
// with it; a body whose request failed may still be being written (a
// server may answer before reading it all) and is left to the collector.
func (w *Writer) recycle(body []byte) {
	if cap(body) == 0 || cap(body) > maxPooledBody {
		return
	}
	body = body[:0]
	w.bodies.Put(&body)
}
