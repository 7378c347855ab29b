package gptbots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/replicator-cdc/replicator"
)

// maxPageSize is the page call's documented limit.
const maxPageSize = 100

// maxPages bounds one read, so that a server that never runs out of pages
// cannot loop forever: 10 million rows.
const maxPages = 100_000

// recordsPage is the part of a page answer a read uses, in either
// documented shape.
type recordsPage struct {
	Records []struct {
		Value map[string]any `json:"value"`
	} `json:"records"`
	Total int          `json:"total"`
	Data  *recordsPage `json:"data"`
}

// ReadRows calls each with every row of table (its set fields), 100 at a
// time. Reads share the writer's rate limiter and retries.
func (w *Writer) ReadRows(ctx context.Context, table string, each func(map[string]any) error) error {
	for page := 1; page <= maxPages; page++ {
		p, err := w.readPage(ctx, table, map[string]any{"table_id": table, "page": page, "page_size": maxPageSize})
		if err != nil {
			return err
		}
		for _, r := range p.Records {
			if err := each(r.Value); err != nil {
				return err
			}
		}
		// total is not documented for every shape of the answer: a short
		// page ends the read whatever it says.
		if len(p.Records) < maxPageSize || (p.Total > 0 && page*maxPageSize >= p.Total) {
			return nil
		}
	}
	return fmt.Errorf("gptbots target %q: reading table %s: more than %d pages", w.cfg.Name, table, maxPages)
}

// ReadKeys calls each with the rows of spec's table whose key is one of
// recs' keys: one page call per key, filtered on the key field as the
// writes are. The table must have been prepared.
func (w *Writer) ReadKeys(ctx context.Context, spec replicator.TableSpec, recs []replicator.Record, each func(map[string]any) error) error {
	s, err := w.prepared(spec.Table)
	if err != nil {
		return err
	}
	for i := range recs {
		b, _, err := s.filter(&recs[i], w.loc)
		if err != nil {
			return err
		}
		var f struct {
			Filter json.RawMessage `json:"filter"`
		}
		if err := json.Unmarshal(append(b, '}'), &f); err != nil {
			return err
		}
		p, err := w.readPage(ctx, spec.Table, map[string]any{"table_id": spec.Table, "page": 1, "page_size": 1, "filter": f.Filter})
		if err != nil {
			return err
		}
		for _, r := range p.Records {
			if err := each(r.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

// Render returns rec's fields as the values an upsert sends for them,
// DATETIME in the configured zone and without one, as GPTBots keeps it. A
// value its field cannot hold is left out, as Write leaves it out.
func (w *Writer) Render(spec replicator.TableSpec, rec *replicator.Record) (map[string]any, error) {
	s, err := w.prepared(spec.Table)
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(rec.Fields))
	for _, f := range rec.Fields {
		b, err := s.appendField(nil, f, s.types[f.Name], w.loc)
		if err != nil {
			continue
		}
		var v any
		if err := decodeNumber(b, &v); err != nil {
			return nil, fmt.Errorf("field %s: %w", f.Name, err)
		}
		out[f.Name] = v
	}
	return out, nil
}

func (w *Writer) prepared(table string) (*schema, error) {
	w.mu.RLock()
	s := w.tables[table]
	w.mu.RUnlock()
	if s == nil {
		return nil, fmt.Errorf("gptbots target %q: table %s was not prepared", w.cfg.Name, table)
	}
	return s, nil
}

func (w *Writer) readPage(ctx context.Context, table string, req map[string]any) (*recordsPage, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ans, err := w.send(ctx, call{op: "read", table: table, path: pagePath, body: body})
	var invalid *invalidError
	var tableErr *tableError
	if errors.As(err, &invalid) || errors.As(err, &tableErr) {
		return nil, fmt.Errorf("gptbots target %q: reading table %s: %w", w.cfg.Name, table, err)
	}
	if err != nil {
		return nil, err
	}
	var p recordsPage
	if err := decodeNumber(ans, &p); err != nil {
		return nil, fmt.Errorf("gptbots target %q: reading table %s: the answer is not a records page: %w", w.cfg.Name, table, err)
	}
	if p.Records == nil && p.Data != nil {
		p = *p.Data
	}
	return &p, nil
}
