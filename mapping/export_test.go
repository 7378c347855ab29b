package mapping

import "github.com/replicator-cdc/replicator"

// What the tests against a real PostgreSQL (package mapping_test, which
// reads types through the source's catalog) need from inside the package.

// EncodeAs encodes text, a value of type oid in the source's text form, as
// the mapping encodes a cell of that type in format.
func EncodeAs(types Types, oid uint32, format, text string) (replicator.Value, error) {
	vt, err := resolveType(types, oid)
	if err != nil {
		return replicator.Value{}, err
	}
	e := encoder{t: vt, format: format}
	return e.encode(nil, []byte(text))
}

// ElementDelimiter is elementDelimiter.
var ElementDelimiter = elementDelimiter

// BuiltinArray is builtinArray.
var BuiltinArray = builtinArray

// BuiltinScalars are the built-in scalar types the mapping knows by OID.
func BuiltinScalars() []uint32 {
	oids := make([]uint32, 0, len(builtinClass))
	for oid := range builtinClass {
		oids = append(oids, oid)
	}
	return oids
}
