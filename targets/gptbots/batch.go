package gptbots

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/replicator-cdc/replicator"
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

// write sends the items and returns the records the API refused.
func (w *Writer) write(ctx context.Context, s *schema, r request, items []item) ([]replicator.Rejection, error) {
	chunks, rejected := w.chunks(r, items)
	for _, c := range chunks {
		rej, err := w.writeChunk(ctx, s, r, c)
		if err != nil {
			return nil, err
		}
		rejected = append(rejected, rej...)
	}
	return rejected, nil
}

// writeChunk sends one request. A request the API calls invalid, or an
// update whose failures cannot be matched to records, is split in halves
// until each bad record stands alone; resending is harmless because every
// item is an upsert or delete by key.
func (w *Writer) writeChunk(ctx context.Context, s *schema, r request, chunk []item) ([]replicator.Rejection, error) {
	w.metrics.BatchRows.WithLabelValues(w.cfg.Name, r.op).Observe(float64(len(chunk)))
	ans, err := w.send(ctx, call{op: r.op, table: s.spec.Table, path: r.path, body: r.body(chunk)})
	var invalid *invalidError
	switch {
	case errors.As(err, &invalid) && len(chunk) == 1:
		return []replicator.Rejection{{Record: *chunk[0].rec, Reason: "GPTBots: " + invalid.Error()}}, nil
	case errors.As(err, &invalid):
		return w.bisect(ctx, s, r, chunk)
	case err != nil:
		return nil, err
	}
	var rejected []replicator.Rejection
	if r.op == opUpsert {
		var attributed bool
		if rejected, attributed, err = w.attribute(s, ans, chunk); err != nil {
			return nil, err
		}
		if !attributed {
			return w.bisect(ctx, s, r, chunk)
		}
	}
	w.metrics.Rows.WithLabelValues(w.cfg.Name, s.spec.Table, r.op).Add(float64(len(chunk) - len(rejected)))
	return rejected, nil
}

func (w *Writer) bisect(ctx context.Context, s *schema, r request, chunk []item) ([]replicator.Rejection, error) {
	half := len(chunk) / 2
	a, err := w.writeChunk(ctx, s, r, chunk[:half])
	if err != nil {
		return nil, err
	}
	b, err := w.writeChunk(ctx, s, r, chunk[half:])
	if err != nil {
		return nil, err
	}
	return append(a, b...), nil
}

// attribute turns an update answer's fail_detail into rejections. It
// reports false when a failure names no record of the chunk and the chunk
// has more than one, so that only splitting can tell which failed.
func (w *Writer) attribute(s *schema, ans []byte, chunk []item) ([]replicator.Rejection, bool, error) {
	reasons, ok, err := failures(ans, s.key)
	if err != nil {
		return nil, false, fmt.Errorf("gptbots target %q: unexpected answer to an update of table %s: %w", w.cfg.Name, s.spec.Table, err)
	}
	keys := make(map[string]bool, len(chunk))
	for _, it := range chunk {
		keys[it.key] = true
	}
	for k := range reasons {
		ok = ok && keys[k]
	}
	if !ok {
		if len(chunk) > 1 {
			return nil, false, nil
		}
		why := strings.Join(slices.Sorted(maps.Values(reasons)), "; ")
		if why == "" {
			why = "counted as failed without a reason"
		}
		w.metrics.Errors.WithLabelValues(w.cfg.Name, "rejected").Inc()
		return []replicator.Rejection{{Record: *chunk[0].rec, Reason: "GPTBots: " + why}}, true, nil
	}
	var rejected []replicator.Rejection
	for _, it := range chunk {
		if reason, failed := reasons[it.key]; failed {
			rejected = append(rejected, replicator.Rejection{Record: *it.rec, Reason: "GPTBots: " + reason})
		}
	}
	w.metrics.Errors.WithLabelValues(w.cfg.Name, "rejected").Add(float64(len(rejected)))
	return rejected, true, nil
}
