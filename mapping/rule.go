// Package mapping turns decoded source rows into target records: which
// target table a source table goes to, its conflict key, renamed and
// encoded columns, and what deletes and truncates become.
package mapping

import (
	"github.com/replicator-cdc/replicator"
)

// DeleteMode says what a source delete becomes.
type DeleteMode string

// Delete policies.
const (
	DeleteRow    DeleteMode = "delete"
	DeleteIgnore DeleteMode = "ignore"
	DeleteSoft   DeleteMode = "soft"
)

// TruncatePolicy says what a source TRUNCATE does.
type TruncatePolicy string

// Truncate policies: halting tells the user to resync; ignoring is logged;
// emptying deletes every row of the target table and goes on.
const (
	TruncateHalt   TruncatePolicy = "halt"
	TruncateIgnore TruncatePolicy = "ignore"
	TruncateEmpty  TruncatePolicy = "empty"
)

// RejectPolicy says what a record a target rejects for good does.
type RejectPolicy string

// Reject policies.
const (
	RejectDeadLetter RejectPolicy = "dead_letter"
	RejectHalt       RejectPolicy = "halt"
)

// MissingPolicy says what a mapped column the source table no longer has
// (renamed or dropped) does.
type MissingPolicy string

// Missing-column policies.
const (
	MissingHalt MissingPolicy = "halt"
	MissingSkip MissingPolicy = "skip"
)

// ColumnRule maps one source column.
type ColumnRule struct {
	Source string
	Target string
	Format string
}

// Rule is one table's mapping, resolved against the source catalog.
type Rule struct {
	// Source is "schema.table".
	Source string
	// Target names the configured target (writer).
	Target string
	// Table is the target table.
	Table string
	// Key lists the source columns of the conflict key.
	Key []string
	// Columns lists the mapped columns in source order.
	Columns []ColumnRule
	// AllColumns maps columns added to the source later under their own
	// names (the configuration listed no columns).
	AllColumns bool
	OnDelete   DeleteMode
	// SoftColumn is the target column a soft delete sets to true.
	SoftColumn string
	OnTruncate TruncatePolicy
	OnReject   RejectPolicy
	Snapshot   bool
	// Where is the row filter: a SQL boolean expression over the source
	// table's columns ("": every row).
	Where string
	// OnMissingColumn applies to listed columns the source table lacks.
	OnMissingColumn MissingPolicy
	// TargetColumns, when not nil, are the target table's columns: a
	// column AllColumns would copy is left out when the target lacks it.
	TargetColumns map[string]bool
	// Required are the target columns an insert must carry (NOT NULL
	// without a default): an update that leaves one out as unchanged is
	// completed from the source, since the target checks the proposed row
	// before it finds the existing one.
	Required map[string]bool
}

// Spec is what the rule's writer needs to know.
func (r *Rule) Spec() replicator.TableSpec {
	spec := replicator.TableSpec{Source: r.Source, Table: r.Table}
	for _, k := range r.Key {
		spec.Key = append(spec.Key, r.targetName(k))
	}
	for _, c := range r.Columns {
		spec.Columns = append(spec.Columns, c.Target)
	}
	if r.OnDelete == DeleteSoft {
		spec.Columns = append(spec.Columns, r.SoftColumn)
	}
	return spec
}

func (r *Rule) targetName(source string) string {
	for _, c := range r.Columns {
		if c.Source == source {
			return c.Target
		}
	}
	return source
}

func (r *Rule) column(source string) (ColumnRule, bool) {
	for _, c := range r.Columns {
		if c.Source == source {
			return c, true
		}
	}
	if r.AllColumns && (r.TargetColumns == nil || r.TargetColumns[source]) {
		return ColumnRule{Source: source, Target: source}, true
	}
	return ColumnRule{}, false
}
