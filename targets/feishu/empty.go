package feishu

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/replicator-cdc/replicator"
)

// emptyRounds bounds the rounds of Empty for a table that refills as fast
// as it is emptied (a person or another program writing it).
const emptyRounds = 100000

// Empty deletes every row of the table (on_truncate: empty). The delete
// call needs a filter and only the filters the writer already sends are
// relied on: each round lists the first page of rows and deletes them by
// key (k=in.(…), or or=(and(…)) for a composite key), and rows with a NULL
// key by k=is.null, until a list finds no row.
func (w *Writer) Empty(ctx context.Context, spec replicator.TableSpec) error {
	where := fmt.Sprintf("feishu target %q: emptying table %s (from %s, on_truncate: empty)", w.cfg.Name, spec.Table, spec.Source)
	for range emptyRounds {
		recs, nullKey, err := w.firstPageKeys(ctx, spec, where)
		if err != nil {
			return err
		}
		if len(recs) == 0 && !nullKey {
			return nil
		}
		if nullKey {
			if len(spec.Key) != 1 {
				return fmt.Errorf("%s: a row has NULL in a part of its composite key (%v), which no delete filter the writer uses can select: delete it by hand and restart", where, spec.Key)
			}
			c := call{op: replicator.OpDelete.String(), table: spec.Table, method: http.MethodDelete, path: recordsPath(spec.Table),
				query: url.Values{"filter": {string(appendEscaped(nil, []byte(spec.Key[0]))) + "=is.null"}}}
			if _, err := w.do(ctx, c); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
		}
		if len(recs) == 0 {
			continue
		}
		rejected, err := w.runAll(ctx, &spec, deleteJobs(spec.Key, recs, w.cfg.MaxBatchRows, w.cfg.MaxFilterLength), nil)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if len(rejected) > 0 {
			return fmt.Errorf("%s: the API refused to delete a row: %s", where, rejected[0].Reason)
		}
	}
	return fmt.Errorf("%s: the table still has rows after %d rounds: something keeps writing it; stop that and restart", where, emptyRounds)
}

func recordsPath(table string) string { return "/tables/" + url.PathEscape(table) + "/records" }

// firstPageKeys lists the first page of rows and returns their keys as
// delete records; nullKey says a listed row has NULL in a key column.
func (w *Writer) firstPageKeys(ctx context.Context, spec replicator.TableSpec, where string) (recs []replicator.Record, nullKey bool, err error) {
	q := url.Values{"page_size": {strconv.Itoa(w.cfg.MaxBatchRows)}}
	data, err := w.do(ctx, call{op: "schema", table: spec.Table, method: http.MethodGet, path: recordsPath(spec.Table), query: q})
	if err != nil {
		return nil, false, fmt.Errorf("%s: listing rows: %w", where, err)
	}
	var page struct {
		Items string `json:"items"`
	}
	if err := json.Unmarshal(data, &page); err != nil {
		return nil, false, fmt.Errorf("%s: listing rows: unreadable answer: %w", where, err)
	}
	var items []map[string]json.RawMessage
	if page.Items != "" {
		if err := json.Unmarshal([]byte(page.Items), &items); err != nil {
			return nil, false, fmt.Errorf("%s: listing rows: unreadable items: %w", where, err)
		}
	}
	for _, item := range items {
		rec := replicator.Record{Op: replicator.OpDelete}
		null := false
		for _, k := range spec.Key {
			v := keyValue(item[k])
			null = null || v.IsNull()
			rec.Key = append(rec.Key, replicator.Field{Name: k, Value: v})
		}
		if null {
			nullKey = true
			continue
		}
		recs = append(recs, rec)
	}
	return recs, nullKey, nil
}

// keyValue turns a listed JSON value back into the text a delete filter
// compares: a string's contents, a number's or boolean's literal.
func keyValue(raw json.RawMessage) replicator.Value {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return replicator.Null
	case raw[0] == '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return replicator.Value{Kind: replicator.KindText, Raw: []byte(s)}
		}
	case string(raw) == "true" || string(raw) == "false":
		return replicator.Value{Kind: replicator.KindBool, Raw: raw}
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		return replicator.Value{Kind: replicator.KindNumeric, Raw: raw}
	}
	return replicator.Value{Kind: replicator.KindJSON, Raw: raw}
}
