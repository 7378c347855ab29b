package replication

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// CheckFilter reports what is wrong with a mapping's row filter (where:)
// before PostgreSQL would: an expression the table cannot evaluate, or
// one that reads columns outside the replica identity. PostgreSQL accepts
// the latter in the publication but then refuses every UPDATE and DELETE
// of the table — the application's writes, not the daemon's — because it
// must judge the old row, of which only the identity columns are logged.
// It evaluates the expression against no rows, in a read-only transaction.
func CheckFilter(ctx context.Context, conn *pgx.Conn, info *TableInfo, where string) error {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("check the row filter: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // a read-only transaction has nothing to keep
	if _, err := tx.Exec(ctx, fmt.Sprintf("SELECT FROM %s WHERE (%s) LIMIT 0", info.quotedName(), where)); err != nil {
		return fmt.Errorf("where: %q is not a boolean expression over the table's columns: %v", where, err)
	}
	var identity []string
	for _, c := range info.Columns {
		if c.Key {
			identity = append(identity, quoteIdent(c.Name))
		}
	}
	sql := fmt.Sprintf("SELECT FROM (SELECT %s FROM %s) AS %s WHERE (%s) LIMIT 0",
		strings.Join(identity, ", "), info.quotedName(), quoteIdent(info.Name), where)
	if _, err := tx.Exec(ctx, sql); err != nil {
		return fmt.Errorf("where: %q reads columns outside the replica identity (%s), so PostgreSQL would refuse every UPDATE and DELETE of the table once the publication filters on it (%v): filter on the key columns only, or ALTER TABLE %s REPLICA IDENTITY FULL",
			where, strings.Join(identityNames(info), ", "), err, info.quotedName())
	}
	return nil
}

func identityNames(info *TableInfo) []string {
	var names []string
	for _, c := range info.Columns {
		if c.Key {
			names = append(names, c.Name)
		}
	}
	if len(names) == 0 {
		return []string{"no columns"}
	}
	return names
}

// sameFilter reports whether the catalog's deparsed row filter is the
// configured one, as far as text tells: PostgreSQL stores its own
// rendering (parenthesized, with casts), so an equal filter written
// differently reads as changed and is set again, which is harmless.
func sameFilter(stored, want string) bool {
	return squeeze(stored) == squeeze(want)
}

func squeeze(s string) string {
	s = strings.Join(strings.Fields(s), "")
	for len(s) >= 2 && s[0] == '(' && s[len(s)-1] == ')' && balanced(s[1:len(s)-1]) {
		s = s[1 : len(s)-1]
	}
	return s
}

// balanced reports whether s's parentheses pair up, so that stripping a
// pair around it keeps the expression's meaning.
func balanced(s string) bool {
	depth := 0
	for _, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return false
			}
		}
	}
	return depth == 0
}
