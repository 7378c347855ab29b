package replicator

// Kind says how a Value's Raw bytes are to be read. It is decided by the
// mapping from the source column's type (and the column's format override),
// so that writers can encode a value for their API without parsing it into a
// Go value first.
type Kind uint8

const (
	// KindNull is SQL NULL; Raw is empty. Writers send an explicit null.
	KindNull Kind = iota
	// KindInt is an exact decimal integer of any size ("-12", "9007199254740993").
	KindInt
	// KindNumeric is an exact decimal ("3.14159265358979323846") or NaN, Infinity, -Infinity.
	KindNumeric
	// KindFloat is a float in PostgreSQL's shortest exact text ("1.5", "1e+100") or NaN, Infinity, -Infinity.
	KindFloat
	// KindBool is "true" or "false".
	KindBool
	// KindText is a UTF-8 string.
	KindText
	// KindTimestampTZ is an instant as RFC 3339 with offset and up to microseconds:
	// "2024-01-02T03:04:05.123456+00:00".
	KindTimestampTZ
	// KindTimestamp is a zoneless ISO 8601 date and time: "2024-01-02T03:04:05.123456".
	KindTimestamp
	// KindDate is an ISO 8601 date: "2024-01-02".
	KindDate
	// KindTime is a time of day, with an offset for timetz: "03:04:05.123456" or "03:04:05+02".
	KindTime
	// KindJSON is a valid JSON document (json, jsonb, and arrays converted to JSON arrays).
	KindJSON
	// KindBytes is bytea as "\x" followed by lowercase hex digits.
	KindBytes
)

var kindNames = [...]string{"null", "int", "numeric", "float", "bool", "text", "timestamptz", "timestamp", "date", "time", "json", "bytes"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Value is one column value, kept in its normalized text form (see Kind).
// Raw may alias a decoder's buffer only until the record leaves the mapping
// layer; records handed to the batcher own their bytes (one buffer per
// record, which Record.Size charges).
type Value struct {
	Kind Kind
	Raw  []byte
}

// Null is the SQL NULL value.
var Null = Value{Kind: KindNull}

// IsNull reports whether v is SQL NULL.
func (v Value) IsNull() bool { return v.Kind == KindNull }

// Field is a target column name and its value.
type Field struct {
	Name  string
	Value Value
}
