package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/replicator-cdc/replicator"
	"github.com/replicator-cdc/replicator/state"
)

// dryRunWriter prints each write as a JSON line and confirms it.
type dryRunWriter struct {
	target string
	mu     sync.Mutex
	out    io.Writer
}

func (w *dryRunWriter) Prepare(context.Context, []replicator.TableSpec) error { return nil }

func (w *dryRunWriter) Write(_ context.Context, b replicator.Batch) ([]replicator.Rejection, error) {
	var buf []byte
	for _, r := range b.Records {
		line := struct {
			Target string                     `json:"target"`
			Table  string                     `json:"table"`
			Op     string                     `json:"op"`
			Key    map[string]json.RawMessage `json:"key"`
			Fields map[string]json.RawMessage `json:"fields,omitempty"`
			LSN    string                     `json:"lsn"`
		}{w.target, b.Table.Table, r.Op.String(), jsonFields(r.Key), nil, r.LSN.String()}
		if r.Op == replicator.OpUpsert {
			line.Fields = jsonFields(r.Fields)
		}
		data, err := json.Marshal(&line)
		if err != nil {
			return nil, fmt.Errorf("dry run: %w", err)
		}
		buf = append(append(buf, data...), '\n')
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.out.Write(buf)
	return nil, err
}

// Empty prints the emptying of a table (on_truncate: empty).
func (w *dryRunWriter) Empty(_ context.Context, t replicator.TableSpec) error {
	data, err := json.Marshal(map[string]string{"target": w.target, "table": t.Table, "op": "empty"})
	if err != nil {
		return fmt.Errorf("dry run: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err = w.out.Write(append(data, '\n'))
	return err
}

func jsonFields(fields []replicator.Field) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(fields))
	for _, f := range fields {
		out[f.Name] = replicator.AppendJSON(nil, f.Value)
	}
	return out
}

// openState opens the state kept in docs; a dry run works on a throwaway
// copy so that it records no progress.
func openState(dir string, docs state.Docs, dryRun bool) (*state.Store, error) {
	if !dryRun {
		return state.OpenIn(dir, docs)
	}
	tmp, err := os.MkdirTemp("", "replicator-dry-run-")
	if err != nil {
		return nil, fmt.Errorf("dry run: %w", err)
	}
	data, found, err := docs.Load(state.StateFile)
	if err == nil && found {
		err = os.WriteFile(filepath.Join(tmp, state.StateFile), data, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("dry run: copy state: %w", err)
	}
	return state.Open(tmp)
}
