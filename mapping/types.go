package mapping

import (
	"fmt"

	"github.com/replicator-cdc/replicator"
)

// Types looks up source types the mapping does not know by OID: domains,
// enums, composites, ranges, extension types and arrays of them.
type Types interface {
	LookupType(oid uint32) (replicator.TypeInfo, error)
}

// class is how the values of a type are encoded; every type the mapping
// does not single out is text.
type class uint8

const (
	classText class = iota
	classInt
	classNumeric
	classFloat
	classMoney
	classBool
	classJSON
	classBytea
	classDate
	classTimestamp
	classTimestampTZ
	classTime
	classArray
)

// valueType is a column type resolved, once, to how its values are encoded.
type valueType struct {
	class class
	// elem and delim describe an array's elements.
	elem  *valueType
	delim byte
}

// builtinClass holds the built-in scalar types whose text is not simply a
// string for the targets. OIDs below 16384 are fixed by PostgreSQL.
var builtinClass = map[uint32]class{
	21: classInt, 23: classInt, 20: classInt, // int2, int4, int8
	26: classInt, 28: classInt, 29: classInt, 5069: classInt, // oid, xid, cid, xid8
	1700: classNumeric,
	700:  classFloat, 701: classFloat,
	790: classMoney,
	16:  classBool,
	114: classJSON, 3802: classJSON,
	17:   classBytea,
	1082: classDate,
	1114: classTimestamp,
	1184: classTimestampTZ,
	1083: classTime, 1266: classTime,
	// Common text types, so that they need no catalog read.
	25: classText, 1043: classText, 1042: classText, 19: classText, 2950: classText,
	// int2vector and oidvector are arrays to the catalog but print
	// without braces: text.
	22: classText, 30: classText,
}

// builtinArray maps the arrays of the common built-in types to their
// element type; box's elements are separated by ';'.
var builtinArray = map[uint32]uint32{
	1005: 21, 1007: 23, 1016: 20, 1028: 26, 1231: 1700, 1021: 700, 1022: 701, 791: 790,
	1000: 16, 199: 114, 3807: 3802, 1001: 17, 1182: 1082, 1115: 1114, 1185: 1184,
	1183: 1083, 1270: 1266, 1009: 25, 1015: 1043, 1014: 1042, 1003: 19, 2951: 2950,
	1020: 603,
}

const boxOID = 603

// maxDomainDepth bounds the walk through domains over domains.
const maxDomainDepth = 32

// resolveType says how values of type oid are encoded: a domain as its
// base type, an array by its element type, built-in types without asking
// the catalog, and every other type as text. types may be nil: then only
// built-in types are recognized.
func resolveType(types Types, oid uint32) (*valueType, error) {
	return resolveDepth(types, oid, 0)
}

func resolveDepth(types Types, oid uint32, depth int) (*valueType, error) {
	if depth > maxDomainDepth {
		return nil, fmt.Errorf("type %d: domains nested deeper than %d", oid, maxDomainDepth)
	}
	if c, ok := builtinClass[oid]; ok {
		return &valueType{class: c}, nil
	}
	if elem, ok := builtinArray[oid]; ok {
		e, err := resolveDepth(types, elem, depth+1)
		if err != nil {
			return nil, err
		}
		delim := byte(',')
		if elem == boxOID {
			delim = ';'
		}
		return &valueType{class: classArray, elem: e, delim: delim}, nil
	}
	if types == nil {
		return &valueType{class: classText}, nil
	}
	info, err := types.LookupType(oid)
	if err != nil {
		return nil, err
	}
	switch {
	case info.Type == 'd':
		return resolveDepth(types, info.BaseOID, depth+1)
	case info.Category == 'A' && info.ElemOID != 0:
		e, err := resolveDepth(types, info.ElemOID, depth+1)
		if err != nil {
			return nil, err
		}
		delim, err := elementDelimiter(types, info.ElemOID)
		if err != nil {
			return nil, err
		}
		return &valueType{class: classArray, elem: e, delim: delim}, nil
	}
	return &valueType{class: classText}, nil
}

// elementDelimiter is the element type's typdelim, which array_out puts
// between elements (a domain carries its base type's).
func elementDelimiter(types Types, elem uint32) (byte, error) {
	if elem == boxOID {
		return ';', nil
	}
	if _, ok := builtinClass[elem]; ok {
		return ',', nil
	}
	info, err := types.LookupType(elem)
	if err != nil {
		return 0, err
	}
	if info.Delim == 0 {
		return ',', nil
	}
	return info.Delim, nil
}
