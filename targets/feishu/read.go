package feishu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/replicator-cdc/replicator"
)

// maxPageSize is the records list's documented page size limit.
const maxPageSize = 500

// maxPages bounds one read, so that a page token that never ends (a
// misbehaving server) cannot loop forever: 10 million rows.
const maxPages = 20_000

// ReadRows calls each with every row of table, a page of at most 500 at a
// time. Reads share the writer's rate limiter and retries.
func (w *Writer) ReadRows(ctx context.Context, table string, each func(map[string]any) error) error {
	return w.list(ctx, table, "", each)
}

// ReadKeys calls each with the rows of spec's table whose key is one of
// recs' keys, reading them with the same key filters a delete uses.
func (w *Writer) ReadKeys(ctx context.Context, spec replicator.TableSpec, recs []replicator.Record, each func(map[string]any) error) error {
	for _, j := range deleteJobs(spec.Key, recs, maxPageSize, w.cfg.MaxFilterLength) {
		if err := w.list(ctx, spec.Table, deleteFilter(spec.Key, j.recs), each); err != nil {
			return err
		}
	}
	return nil
}

// Render returns rec's fields as the JSON values an upsert sends for them.
func (w *Writer) Render(_ replicator.TableSpec, rec *replicator.Record) (map[string]any, error) {
	out := make(map[string]any, len(rec.Fields))
	for _, f := range rec.Fields {
		v, err := decodeValue(replicator.AppendJSON(nil, f.Value))
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", f.Name, err)
		}
		out[f.Name] = v
	}
	return out, nil
}

func (w *Writer) list(ctx context.Context, table, filter string, each func(map[string]any) error) error {
	token := ""
	for range maxPages {
		q := url.Values{"page_size": {strconv.Itoa(maxPageSize)}}
		if token != "" {
			q.Set("page_token", token)
		}
		if filter != "" {
			q.Set("filter", filter)
		}
		data, err := w.do(ctx, call{op: "read", table: table, method: http.MethodGet, path: "/tables/" + url.PathEscape(table) + "/records", query: q})
		if rej, ok := errors.AsType[*rejectError](err); ok {
			return fmt.Errorf("feishu target %q: reading table %s: %w: check the table's name and that the app may read it", w.cfg.Name, table, rej.apiError)
		}
		if err != nil {
			return err
		}
		var page struct {
			Items     string `json:"items"`
			HasMore   bool   `json:"has_more"`
			PageToken string `json:"page_token"`
		}
		if err := json.Unmarshal(data, &page); err != nil {
			return fmt.Errorf("feishu target %q: reading table %s: the answer's data is not a records page: %w", w.cfg.Name, table, err)
		}
		var items []map[string]any
		if page.Items != "" {
			d := json.NewDecoder(bytes.NewReader([]byte(page.Items)))
			d.UseNumber()
			if err := d.Decode(&items); err != nil {
				return fmt.Errorf("feishu target %q: reading table %s: data.items is not a JSON array in a string: %w", w.cfg.Name, table, err)
			}
		}
		for _, it := range items {
			if err := each(it); err != nil {
				return err
			}
		}
		if !page.HasMore || page.PageToken == "" {
			return nil
		}
		token = page.PageToken
	}
	return fmt.Errorf("feishu target %q: reading table %s: more than %d pages; the page token does not end", w.cfg.Name, table, maxPages)
}

func decodeValue(b []byte) (any, error) {
	var v any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	err := d.Decode(&v)
	return v, err
}
