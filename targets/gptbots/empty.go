package gptbots

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/replicator-cdc/replicator"
)

// emptyPageSize is the largest page records/page serves.
const emptyPageSize = 100

// emptyRounds bounds the rounds of Empty for a table that refills as fast
// as it is emptied (a person or another program writing it).
const emptyRounds = 100000

type idPage struct {
	Records []struct {
		RecordID string `json:"record_id"`
	} `json:"records"`
	Data *idPage `json:"data"`
}

// Empty deletes every row of the table (on_truncate: empty). The API has
// no delete-all: each round reads up to MaxDeleteItems record ids from the
// first pages (records/page serves at most 100 per page) and deletes them
// by record_id in one call, until a read finds no row.
func (w *Writer) Empty(ctx context.Context, spec replicator.TableSpec) error {
	where := fmt.Sprintf("gptbots target %q: emptying table %s (from %s, on_truncate: empty)", w.cfg.Name, spec.Table, spec.Source)
	for range emptyRounds {
		size := min(emptyPageSize, w.cfg.MaxDeleteItems)
		var ids []string
		for page := 1; page <= w.cfg.MaxDeleteItems/size; page++ {
			got, err := w.recordIDs(ctx, spec.Table, page, size, where)
			if err != nil {
				return err
			}
			ids = append(ids, got...)
			if len(got) < size {
				break
			}
		}
		if len(ids) == 0 {
			return nil
		}
		items := make([]map[string]string, len(ids))
		for i, id := range ids {
			items[i] = map[string]string{"record_id": id}
		}
		body, err := json.Marshal(map[string]any{"table_id": spec.Table, "delete_data": items})
		if err != nil {
			return err
		}
		if _, err := w.send(ctx, call{op: opDelete, table: spec.Table, path: deletePath, body: body, rows: len(ids)}); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return fmt.Errorf("%s: the table still has rows after %d rounds: something keeps writing it; stop that and restart", where, emptyRounds)
}

// recordIDs reads the record ids of one page.
func (w *Writer) recordIDs(ctx context.Context, table string, page, size int, where string) ([]string, error) {
	body, err := json.Marshal(map[string]any{"table_id": table, "page": page, "page_size": size})
	if err != nil {
		return nil, err
	}
	ans, err := w.send(ctx, call{op: "schema", table: table, path: pagePath, body: body})
	if err != nil {
		return nil, fmt.Errorf("%s: reading record ids: %w", where, err)
	}
	var p idPage
	if err := json.Unmarshal(ans, &p); err != nil {
		return nil, fmt.Errorf("%s: reading record ids: %w", where, err)
	}
	if p.Data != nil {
		p = *p.Data
	}
	ids := make([]string, 0, len(p.Records))
	for _, r := range p.Records {
		if r.RecordID == "" {
			return nil, fmt.Errorf("%s: a record in the page answer has no record_id; check base_url", where)
		}
		ids = append(ids, r.RecordID)
	}
	return ids, nil
}
