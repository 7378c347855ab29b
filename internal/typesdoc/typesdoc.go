// Package typesdoc reads the type table of docs/types.md, so that tests can
// hold each documented row against the encoders' real output.
package typesdoc

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/replicator-cdc/replicator/internal/pgtest"
	"github.com/replicator-cdc/replicator/replication"
)

// Row is one documented type and value.
type Row struct {
	Line int
	// Type is the SQL type; Sample an SQL expression cast to it.
	Type, Sample string
	// Feishu is the JSON Feishu receives.
	Feishu string
	// Field is the GPTBots field type; GPTBots the JSON it receives, or ""
	// when the row says only TEXT: the value's text as a JSON string.
	Field, GPTBots string
}

// Sample is a documented row with its sample as PostgreSQL evaluated it.
type Sample struct {
	Row
	// Text is the value as the type's output function writes it (as
	// pgoutput sends it); OID its type.
	Text []byte
	OID  uint32
}

// Open reads the table in path and evaluates every row's sample on a
// database of its own in a throwaway cluster that holds Types. The catalog
// it returns resolves the samples' types as the daemon does; its connection
// closes when the test ends.
func Open(tb testing.TB, path string) ([]Sample, *replication.TypeCatalog) {
	tb.Helper()
	rows, err := read(path)
	if err != nil {
		tb.Fatal(err)
	}
	c := pgtest.Start(tb)
	ctx := tb.Context()
	conn, err := replication.ConnectSQL(ctx, c.NewDatabase(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, types); err != nil {
		tb.Fatal(err)
	}
	samples := make([]Sample, len(rows))
	for i, r := range rows {
		text, oid, err := source(ctx, conn, r)
		if err != nil {
			tb.Fatal(err)
		}
		samples[i] = Sample{Row: r, Text: text, OID: oid}
	}
	return samples, &replication.TypeCatalog{Conn: conn}
}

// types are the user-defined types the table's rows use.
const types = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN stamp AS timestamptz;
CREATE DOMAIN cash AS money;
CREATE TYPE pair AS (n integer, s text);
`

// read parses the rows of the table in path whose first cell is a code
// span (header and separator rows have none).
func read(path string) ([]Row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows []Row
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := split(line)
		if len(cells) < 4 {
			return nil, fmt.Errorf("%s:%d: want at least 4 cells, have %d", path, n, len(cells))
		}
		r := Row{Line: n, Type: code(cells[0]), Sample: code(cells[1]), Feishu: code(cells[2])}
		field, value, _ := strings.Cut(strings.TrimSpace(cells[3]), " ")
		r.Field, r.GPTBots = field, code(value)
		if r.Type == "" || r.Sample == "" || r.Feishu == "" || r.Field == "" {
			return nil, fmt.Errorf("%s:%d: a cell is empty", path, n)
		}
		rows = append(rows, r)
	}
	return rows, sc.Err()
}

// split cuts a table row at the pipes outside code spans.
func split(line string) []string {
	var cells []string
	inCode := false
	start := 1
	for i := 1; i < len(line); i++ {
		switch line[i] {
		case '`':
			inCode = !inCode
		case '|':
			if !inCode {
				cells = append(cells, line[start:i])
				start = i + 1
			}
		}
	}
	return cells
}

// code returns the first code span's content.
func code(cell string) string {
	_, rest, ok := strings.Cut(cell, "`")
	if !ok {
		return ""
	}
	inner, _, _ := strings.Cut(rest, "`")
	return inner
}

// source evaluates the row's sample on conn and returns the value's text
// as the type's output function writes it (as pgoutput sends it) and its
// type OID.
func source(ctx context.Context, conn *pgx.Conn, r Row) ([]byte, uint32, error) {
	var oid uint32
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT pg_typeof((%s)::%s)::oid", r.Sample, r.Type)).Scan(&oid); err != nil {
		return nil, 0, fmt.Errorf("line %d: %w", r.Line, err)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT (%s)::%s", r.Sample, r.Type), pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		return nil, 0, fmt.Errorf("line %d: %w", r.Line, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, 0, fmt.Errorf("line %d: no row: %v", r.Line, rows.Err())
	}
	text := append([]byte(nil), rows.RawValues()[0]...)
	rows.Close()
	return text, oid, rows.Err()
}
