package replication

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/replicator-cdc/replicator"
)

// ReadKeys reads the rows whose key columns hold one of keys (each the key
// columns' text, in key order), as text cells in the relation's column
// order; keys without a row are simply absent. A key text the column type
// does not accept is an error.
func ReadKeys(ctx context.Context, q querier, info *TableInfo, key []string, keys [][][]byte) ([][]replicator.Cell, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	casts, err := info.keyCasts(key)
	if err != nil {
		return nil, err
	}
	keyCols := make([]string, len(key))
	for i, k := range key {
		keyCols[i] = quoteIdent(k)
	}
	args := []any{pgx.QueryResultFormats{pgx.TextFormatCode}}
	tuples := make([]string, len(keys))
	for n, k := range keys {
		if len(k) != len(key) {
			return nil, fmt.Errorf("read %s by key: a key has %d values, the key %d columns", info.QualifiedName(), len(k), len(key))
		}
		params := make([]string, len(key))
		for i := range key {
			args = append(args, string(k[i]))
			params[i] = fmt.Sprintf("$%d::text::%s", len(args)-1, casts[i])
		}
		tuples[n] = "(" + strings.Join(params, ", ") + ")"
	}
	sql := fmt.Sprintf("SELECT %s FROM %s WHERE (%s) IN (%s)",
		selectList(info, func(int) bool { return true }), info.quotedName(), strings.Join(keyCols, ", "), strings.Join(tuples, ", "))
	rows, _, err := readRows(ctx, q, info, sql, args, false)
	return rows, err
}
