package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/replication"
)

// fullReadAbove is the number of keys above which a re-check reads the
// whole target table rather than row by row.
const fullReadAbove = 200

// recheck reads each candidate's source row, then (once a running daemon
// confirmed that read's position) its target row, then its source row
// again. A candidate whose source row did not change in between is decided:
// equal, or a difference that persisted. One whose source row changed is
// returned, to be checked in the next round.
func (v *verifier) recheck(ctx context.Context, cands map[string]candidate, rep *TableReport) (map[string]candidate, error) {
	keys := make([][][]byte, 0, len(cands))
	recs := make([]replicator.Record, 0, len(cands))
	for _, c := range cands {
		keys = append(keys, c.keyText)
		recs = append(recs, c.keyRec)
	}
	before, err := v.readKeys(ctx, keys)
	if err != nil {
		return nil, err
	}
	lsn, err := replication.VisiblePosition(ctx, v.conn)
	if err != nil {
		return nil, err
	}
	caughtUp, err := v.waitDaemon(ctx, lsn)
	if err != nil {
		return nil, err
	}
	rep.Lagging = !caughtUp
	target := map[string][]map[string]any{}
	keep := func(row map[string]any) error {
		k := targetKey(v.spec.Key, row)
		if _, ok := cands[k]; ok {
			target[k] = append(target[k], row)
		}
		return nil
	}
	if len(cands) > fullReadAbove {
		err = v.rd.ReadRows(ctx, v.spec.Table, keep)
	} else {
		err = v.rd.ReadKeys(ctx, v.spec, recs, keep)
	}
	if err != nil {
		return nil, err
	}
	after, err := v.readKeys(ctx, keys)
	if err != nil {
		return nil, err
	}
	next := map[string]candidate{}
	for k, c := range cands {
		s1, s2 := before[k], after[k]
		if (s1 == nil) != (s2 == nil) || (s1 != nil && len(differing(s1.rendered, s2.rendered)) > 0) {
			next[k] = c
			continue
		}
		rows := target[k]
		switch {
		case s2 == nil && len(rows) > 0 && v.extraPolicy():
			rep.add(Difference{Kind: KindExtra, Key: keyLabel(c.keyRec.Key)}, k, c)
		case s2 != nil && len(rows) == 0:
			rep.add(Difference{Kind: KindMissing, Key: keyLabel(c.keyRec.Key)}, k, c)
		case s2 != nil:
			cols := differing(s2.rendered, rows[0])
			if len(rows) > 1 {
				cols = append(cols, "(the key is on several target rows)")
			}
			if len(cols) > 0 {
				rep.add(Difference{Kind: KindDifferent, Key: keyLabel(c.keyRec.Key), Columns: cols}, k, c)
			}
		}
	}
	return next, nil
}

func (v *verifier) extraPolicy() bool {
	_, ok := v.extraCandidate(nil)
	return ok
}

// repairPasses bounds how often repair writes a row again that the
// re-check after a write still finds different (a change the daemon wrote
// just before the repair's older value, say).
const repairPasses = 3

// repair makes the differing rows equal through the target's writer, under
// its rate limit and retries: each row's current source state is read just
// before the write and upserted, or deleted when the source no longer has
// it. The written rows are then checked again like any difference, and
// written again while they differ, at most repairPasses times.
func (v *verifier) repair(ctx context.Context, rep *TableReport) error {
	cands := rep.fixes
	landed := map[string]bool{}
	for pass := 0; pass < repairPasses && len(cands) > 0; pass++ {
		keys := make([][][]byte, 0, len(cands))
		for _, c := range cands {
			keys = append(keys, c.keyText)
		}
		fresh, err := v.readKeys(ctx, keys)
		if err != nil {
			return err
		}
		var recs []replicator.Record
		var recKeys []string
		for k, c := range cands {
			switch s := fresh[k]; {
			case s != nil:
				recs = append(recs, s.rec)
			case v.extraPolicy():
				recs = append(recs, replicator.Record{Op: replicator.OpDelete, Key: c.keyRec.Key})
			default:
				continue
			}
			recKeys = append(recKeys, k)
		}
		for start := 0; start < len(recs); start += 500 {
			end := min(start+500, len(recs))
			rejected, err := v.w.Write(ctx, replicator.Batch{Table: v.spec, Records: recs[start:end]})
			if err != nil {
				return fmt.Errorf("repair: %w", err)
			}
			refused := map[string]bool{}
			for _, r := range rejected {
				refused[r.Record.KeyString()] = true
				rep.RepairRejected = append(rep.RepairRejected, r.Reason)
			}
			for i := start; i < end; i++ {
				if !refused[recs[i].KeyString()] {
					landed[recKeys[i]] = true
				}
			}
		}
		check := &TableReport{}
		next := cands
		for round := 0; round < v.opts.Rounds && len(next) > 0; round++ {
			if next, err = v.recheck(ctx, next, check); err != nil {
				return err
			}
		}
		cands = check.fixes
	}
	rep.repaired = true
	rep.Repaired = len(landed)
	rep.RepairLeft = len(cands)
	return nil
}

// Kinds of difference.
const (
	KindMissing   = "missing"
	KindExtra     = "extra"
	KindDifferent = "different"
)

// Difference is one target row that differs from its source row.
type Difference struct {
	Kind string
	// Key names the row: "id=7", or "a=1, b=x" for a composite key.
	Key string
	// Columns are the target columns whose values differ.
	Columns []string
}

// TableReport is verify's finding for one mapped table.
type TableReport struct {
	Source, Target, Table  string
	SourceRows, TargetRows int
	Missing, Extra         int
	Different              int
	// Examples lists the first few differences of each kind.
	Examples []Difference
	// Rechecked counts the rows the first comparison found different,
	// each checked again before being reported.
	Rechecked int
	// Unsettled counts rows that changed in every re-check: not compared.
	Unsettled int
	// Lagging says a running daemon had not confirmed the last read's
	// position within the settle time: differences may be its lag.
	Lagging bool
	// Repaired counts the rows a repair wrote; RepairLeft those still
	// different after it; RepairRejected the target's reasons for refusing
	// a repair's write.
	Repaired       int
	RepairLeft     int
	RepairRejected []string

	examples int
	fixes    map[string]candidate
	repaired bool
}

func (r *TableReport) add(d Difference, key string, fix candidate) {
	n := &r.Different
	switch d.Kind {
	case KindMissing:
		n = &r.Missing
	case KindExtra:
		n = &r.Extra
	}
	*n++
	if *n <= r.examples {
		r.Examples = append(r.Examples, d)
	}
	if r.fixes == nil {
		r.fixes = map[string]candidate{}
	}
	r.fixes[key] = fix
}

// Equal says the table's mirror was found equal.
func (r *TableReport) Equal() bool {
	return r.Missing+r.Extra+r.Different+r.Unsettled == 0
}

// EqualNow says the mirror is equal at the end: found equal, or repaired
// with every written row checked equal afterwards.
func (r *TableReport) EqualNow() bool {
	if r.Equal() {
		return true
	}
	return r.repaired && r.Unsettled == 0 && r.RepairLeft == 0 && len(r.RepairRejected) == 0
}

// VerifyReport is verify's finding for every table checked.
type VerifyReport struct {
	Tables []TableReport
}

// EqualNow says every table's mirror is equal at the end (see
// TableReport.EqualNow).
func (r *VerifyReport) EqualNow() bool {
	for i := range r.Tables {
		if !r.Tables[i].EqualNow() {
			return false
		}
	}
	return true
}

// keyLabel shows a key for people: target column names and value texts.
func keyLabel(key []replicator.Field) string {
	parts := make([]string, len(key))
	for i, f := range key {
		parts[i] = f.Name + "=" + replicator.Abbreviate(string(f.Value.Raw), 100)
	}
	return strings.Join(parts, ", ")
}
