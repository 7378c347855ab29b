package feishu

import (
	"fmt"
	"strings"
)

// noArbiter is the heart of PostgreSQL's error (SQLSTATE 42P10) for an
// INSERT … ON CONFLICT (cols) that no unique constraint or index on exactly
// those columns matches: "there is no unique or exclusion constraint
// matching the ON CONFLICT specification". The schema answer cannot show
// composite unique constraints, so this answer is how a missing one shows.
//
// Unverified: that Feishu passes PostgreSQL's text through in msg of an
// HTTP 400 answer with code 2320001. The match is a case-insensitive
// substring, so that a prefix ("param is invalid: …") or another code still
// counts.
const noArbiter = "no unique or exclusion constraint"

// missingConstraint reports whether an answer's msg says that the upsert's
// on_conflict columns have no matching unique constraint. Every upsert of
// the table would fail alike, so it is fatal, never a rejection of rows.
func missingConstraint(msg string) bool {
	return strings.Contains(strings.ToLower(msg), noArbiter)
}

// missingConstraintError tells the user which table lacks which constraint,
// and the two ways out.
func (w *Writer) missingConstraintError(c call, failure error) error {
	key := strings.ReplaceAll(c.query.Get("on_conflict"), ",", ", ")
	return fmt.Errorf("feishu target %q: table %q has no unique constraint on exactly (%s), the mapping's key, so rows cannot be upserted on it (%w): create a unique constraint on (%s) in the Feishu workspace, or change the mapping's key to columns that have one",
		w.cfg.Name, c.table, key, failure, key)
}
