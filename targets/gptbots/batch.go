package gptbots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/targets/apicall"
	"github.com/replicator-cdc/replicator/targets/isolate"
)

const (
	updatePath = "/v2/database/update/record"
	deletePath = "/v2/database/delete/record"
	opUpsert   = "upsert"
	opDelete   = "delete"
)

// request is one kind of write call on one table.
type request struct {
	op       string
	path     string
	prefix   []byte // the body up to the item list's '['
	maxItems int
}

func (w *Writer) request(op, table string) request {
	prefix := append([]byte(`{"table_id":`), replicator.AppendJSONString(nil, []byte(table))...)
	if op == opUpsert {
		prefix = append(prefix, `,"is_create":true,"update_data":[`...)
		return request{op: op, path: updatePath, prefix: prefix, maxItems: w.cfg.MaxItems}
	}
	prefix = append(prefix, `,"delete_data":[`...)
	return request{op: op, path: deletePath, prefix: prefix, maxItems: w.cfg.MaxDeleteItems}
}

func (r request) body(items []item) []byte {
	n := len(r.prefix) + 2
	for _, it := range items {
		n += len(it.data) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, r.prefix...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it.data...)
	}
	return append(b, "]}"...)
}

// chunks splits items into requests of at most maxItems items and
// MaxBodyBytes bytes. An item too large for any request is rejected.
func (w *Writer) chunks(r request, items []item) (chunks [][]item, tooLarge []replicator.Rejection) {
	overhead := len(r.prefix) + len("]}")
	var cur []item
	size := overhead
	for _, it := range items {
		if overhead+len(it.data) > w.cfg.MaxBodyBytes {
			tooLarge = append(tooLarge, replicator.Rejection{Record: *it.rec, Reason: fmt.Sprintf(
				"the record encodes to %d bytes, more than the %d bytes a GPTBots request may carry", len(it.data), w.cfg.MaxBodyBytes-overhead)})
			continue
		}
		if len(cur) > 0 && (len(cur) == r.maxItems || size+1+len(it.data) > w.cfg.MaxBodyBytes) {
			chunks = append(chunks, cur)
			cur, size = nil, overhead
		}
		if len(cur) > 0 {
			size++
		}
		cur = append(cur, it)
		size += len(it.data)
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}
	return chunks, tooLarge
}

// write sends the items and returns the records the API refused. A record
// is rejected only on evidence that isolates it (see package isolate): a
// fail_detail entry naming it, or isolation by splitting a 40000 answer
// while the table is shown healthy. An answer about the table makes the
// write wait and go again; resending is harmless because every item is an
// upsert or delete by key.
func (w *Writer) write(ctx context.Context, s *schema, r request, items []item) ([]replicator.Rejection, error) {
	chunks, rejected := w.chunks(r, items)
	t := &chunkTarget{w: w, s: s, r: r}
	// The items of a batch have distinct keys, so its chunks may travel
	// together; the client's MaxInFlight bounds the calls.
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(w.cfg.MaxConcurrentRequests)
	for _, c := range chunks {
		g.Go(func() error {
			rej, err := isolate.Run(gctx, t, c, isolate.Options{
				Table: s.spec.Table, Health: w.health, RetryMin: w.cfg.BackoffMin, RetryMax: w.cfg.BackoffMax, MaxRetries: w.cfg.MaxRetries,
			})
			var failing *isolate.FailingError
			if errors.As(err, &failing) {
				return fmt.Errorf("gptbots target %q: %w; check the table and the API key's access to it, or raise max_retries", w.cfg.Name, err)
			}
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for _, x := range rej {
				rejected = append(rejected, replicator.Rejection{Record: *x.Item.rec, Reason: x.Reason})
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return rejected, nil
}

// chunkTarget sends one kind of request to one table, for package isolate.
type chunkTarget struct {
	w *Writer
	s *schema
	r request
}

func (t *chunkTarget) Send(ctx context.Context, chunk []item) (isolate.Answer, error) {
	w := t.w
	ans, err := w.send(ctx, call{op: t.r.op, table: t.s.spec.Table, path: t.r.path, body: t.r.body(chunk), rows: len(chunk)})
	if a, ok := scopeOf(err); ok {
		return a, nil
	}
	if err != nil {
		return isolate.Answer{}, err
	}
	a := isolate.Answer{Kind: isolate.Landed}
	if t.r.op == opUpsert {
		if a, err = w.attribute(t.s, ans, chunk); err != nil {
			return a, err
		}
	}
	if a.Kind == isolate.Landed {
		w.metrics.Rows.WithLabelValues(w.cfg.Name, t.s.spec.Table, t.r.op).Add(float64(len(chunk) - len(a.Bad)))
		w.metrics.Errors.WithLabelValues(w.cfg.Name, apicall.ReasonRejected).Add(float64(len(a.Bad)))
	}
	return a, nil
}

// Probe reads one record: an answer that involves no item.
func (t *chunkTarget) Probe(ctx context.Context) (isolate.Answer, error) {
	body, err := json.Marshal(map[string]any{"table_id": t.s.spec.Table, "page": 1, "page_size": 1})
	if err != nil {
		return isolate.Answer{}, err
	}
	_, err = t.w.send(ctx, call{op: "schema", table: t.s.spec.Table, path: pagePath, body: body})
	if a, ok := scopeOf(err); ok {
		a.Kind = isolate.TableFailing
		return a, nil
	}
	if err != nil {
		return isolate.Answer{}, err
	}
	return isolate.Answer{Kind: isolate.Landed}, nil
}

// scopeOf reads a refusal of a whole request: about the table, or for
// splitting to explain.
func scopeOf(err error) (isolate.Answer, bool) {
	var invalid *invalidError
	var table *tableError
	switch {
	case errors.As(err, &table):
		return isolate.Answer{Kind: isolate.TableFailing, Reason: table.Error()}, true
	case errors.As(err, &invalid):
		return isolate.Answer{Kind: isolate.Refused, Reason: "GPTBots: " + invalid.Error()}, true
	}
	return isolate.Answer{}, false
}

// tableWords mark a per-item failure that is about the table's fields, not
// the item's values: every item would fail the same way, so it is the
// table's failure. Quoted names are taken out before matching.
var tableWords = regexp.MustCompile(`(?i)\b(field|table|column)\b.*\b(not exist|does not exist|not found)\b`)

var quotedParts = regexp.MustCompile(`"[^"]*"`)

// attribute reads an update answer's fail_detail: the items it names are
// bad and the rest landed. A failure it cannot match to an item leaves a
// chunk of several for splitting to explain (the items that did land are
// written again, harmlessly); in a chunk of one it is that item's.
func (w *Writer) attribute(s *schema, ans []byte, chunk []item) (isolate.Answer, error) {
	reasons, ok, err := failures(ans, s.key)
	if err != nil {
		return isolate.Answer{}, fmt.Errorf("gptbots target %q: unexpected answer to an update of table %s: %w", w.cfg.Name, s.spec.Table, err)
	}
	for _, why := range reasons {
		if tableWords.MatchString(quotedParts.ReplaceAllString(why, `""`)) {
			return isolate.Answer{Kind: isolate.TableFailing, Reason: "GPTBots: " + why}, nil
		}
	}
	keys := make(map[string]bool, len(chunk))
	for _, it := range chunk {
		keys[it.key] = true
	}
	for k := range reasons {
		ok = ok && keys[k]
	}
	if !ok {
		why := strings.Join(slices.Sorted(maps.Values(reasons)), "; ")
		if why == "" {
			why = "counted as failed without a reason"
		}
		if len(chunk) > 1 {
			return isolate.Answer{Kind: isolate.Refused, Reason: "GPTBots: " + why}, nil
		}
		return isolate.Answer{Kind: isolate.Landed, Bad: []isolate.Bad{{Index: 0, Reason: "GPTBots: " + why}}}, nil
	}
	a := isolate.Answer{Kind: isolate.Landed}
	for i, it := range chunk {
		if why, failed := reasons[it.key]; failed {
			a.Bad = append(a.Bad, isolate.Bad{Index: i, Reason: "GPTBots: " + why})
		}
	}
	return a, nil
}
