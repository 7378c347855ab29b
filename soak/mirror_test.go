//go:build soak

package soak

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

// mirror is one source table and its target table; the columns have the
// same names on both sides, the first is the key.
type mirror struct {
	source, target, table string
	columns               []string
	feishu                []feishufake.Column
	gptbots               []gptbotsfake.Field
}

const (
	tellersTable  = "1890000000000000011"
	branchesTable = "1890000000000000012"
)

var mirrors = []mirror{
	{source: "pgbench_accounts", target: "lark", table: "accounts", columns: []string{"aid", "bid", "abalance", "filler"},
		feishu: []feishufake.Column{{Name: "aid", DataType: "bigint", IsPrimaryKey: true}, {Name: "bid", DataType: "integer", AllowNull: true},
			{Name: "abalance", DataType: "integer", AllowNull: true}, {Name: "filler", DataType: "text", AllowNull: true}}},
	{source: "pgbench_history", target: "lark", table: "history", columns: []string{"hid", "tid", "bid", "aid", "delta"},
		feishu: []feishufake.Column{{Name: "hid", DataType: "bigint", IsPrimaryKey: true}, {Name: "tid", DataType: "integer", AllowNull: true},
			{Name: "bid", DataType: "integer", AllowNull: true}, {Name: "aid", DataType: "bigint", AllowNull: true}, {Name: "delta", DataType: "integer", AllowNull: true}}},
	{source: "pgbench_tellers", target: "bots", table: tellersTable, columns: []string{"tid", "bid", "tbalance", "filler"},
		gptbots: []gptbotsfake.Field{{Name: "tid", Type: gptbotsfake.TypeInt, Unique: true, Required: true}, {Name: "bid", Type: gptbotsfake.TypeInt},
			{Name: "tbalance", Type: gptbotsfake.TypeInt}, {Name: "filler", Type: gptbotsfake.TypeText}}},
	{source: "pgbench_branches", target: "bots", table: branchesTable, columns: []string{"bid", "bbalance", "filler"},
		gptbots: []gptbotsfake.Field{{Name: "bid", Type: gptbotsfake.TypeInt, Unique: true, Required: true}, {Name: "bbalance", Type: gptbotsfake.TypeInt},
			{Name: "filler", Type: gptbotsfake.TypeText}}},
}

// rows maps a row's key to its values, all as text.
type rows map[string][]string

func sourceRows(ctx context.Context, db *pgx.Conn, m mirror) (rows, error) {
	cols := make([]string, len(m.columns))
	for i, c := range m.columns {
		cols[i] = c + "::text"
	}
	got, err := db.Query(ctx, fmt.Sprintf("SELECT %s FROM %s", strings.Join(cols, ", "), m.source))
	if err != nil {
		return nil, err
	}
	out := rows{}
	for got.Next() {
		vals := make([]string, len(m.columns))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := got.Scan(ptrs...); err != nil {
			got.Close()
			return nil, err
		}
		out[vals[0]] = vals
	}
	return out, got.Err()
}

func targetRows(lark *feishufake.Server, bots *gptbotsfake.Server, m mirror) rows {
	var list []map[string]any
	if m.feishu != nil {
		list = lark.Rows(m.table)
	} else {
		list = bots.Rows(m.table)
	}
	out := rows{}
	for _, r := range list {
		vals := make([]string, len(m.columns))
		for i, c := range m.columns {
			if v, ok := r[c]; ok && v != nil {
				vals[i] = fmt.Sprint(v)
			}
		}
		out[vals[0]] = vals
	}
	return out
}

// diff describes how target differs from source; "" when equal.
func diff(source, target rows) string {
	var problems []string
	for k, s := range source {
		t, ok := target[k]
		switch {
		case !ok:
			problems = append(problems, "missing "+k)
		case strings.Join(s, "|") != strings.Join(t, "|"):
			problems = append(problems, fmt.Sprintf("row %s: source %v, target %v", k, s, t))
		}
	}
	for k := range target {
		if _, ok := source[k]; !ok {
			problems = append(problems, "stale "+k)
		}
	}
	if len(problems) == 0 {
		return ""
	}
	sort.Strings(problems)
	return fmt.Sprintf("%d rows differ (source %d, target %d), e.g. %s", len(problems), len(source), len(target), strings.Join(problems[:min(3, len(problems))], "; "))
}
