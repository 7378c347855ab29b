package mapping

import (
	"errors"
	"fmt"

	"github.com/replicator-cdc/replicator"
)

// maxReasonBytes bounds the text of an encoder error kept in a rejection:
// encoders may quote the value, which can be megabytes.
const maxReasonBytes = 512

// RowError is a row the mapping cannot turn into a record because a key
// value cannot be encoded. The record is rejected as a whole (dead-lettered,
// or halting when the rule says on_reject: halt); it never stops the daemon
// by itself.
type RowError struct {
	Table     *Table
	Rejection replicator.Rejection
}

func (e *RowError) Error() string {
	return fmt.Sprintf("mapping %s: %s", e.Table.Rule.Source, e.Rejection.Reason)
}

// rejectValue records that column i's value cannot be encoded; the record
// is written without it.
func (t *Table) rejectValue(i int, c replicator.Cell, err error) replicator.ValueRejection {
	return replicator.ValueRejection{
		Column: t.fields[i].target,
		Value:  c.Data,
		Reason: replicator.Abbreviate(fmt.Sprintf("column %s: %v", t.rel.Columns[i].Name, err), maxReasonBytes),
	}
}

// rowError rejects the row whose key column idx cannot be encoded, as a
// whole: the reason names the column. The key is quoted in its source
// text, the only form there is.
func (t *Table) rowError(idx int, cells []replicator.Cell, err error) *RowError {
	key := make([]replicator.Field, len(t.keyIdx))
	for i, k := range t.keyIdx {
		key[i] = replicator.Field{Name: t.fields[k].target, Value: replicator.Null}
		if k < len(cells) && cells[k].State == replicator.CellText {
			key[i].Value = replicator.Value{Kind: replicator.KindText, Raw: cells[k].Data}
		}
	}
	return &RowError{Table: t, Rejection: replicator.Rejection{
		Record: replicator.Record{Key: key},
		Reason: replicator.Abbreviate(fmt.Sprintf("key column %s: %v", t.rel.Columns[idx].Name, err), maxReasonBytes),
	}}
}

// rowOp completes a RowError with what the rejected record was to do.
func rowOp(err error, op replicator.Op, lsn replicator.LSN) error {
	var re *RowError
	if errors.As(err, &re) {
		re.Rejection.Record.Op, re.Rejection.Record.LSN = op, lsn
	}
	return err
}

// nullKey rejects the row whose key column idx is NULL: no target row can
// be addressed by it.
func (t *Table) nullKey(idx int, cells []replicator.Cell) *RowError {
	row := t.rowError(idx, cells, nil)
	row.Rejection.Reason = fmt.Sprintf("key column %s is NULL; the target cannot address this row", t.rel.Columns[idx].Name)
	return row
}
