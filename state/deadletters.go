package state

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/replicator-cdc/replicator"
)

// DeadLetterFile is the name of the dead-letter file in the state directory.
const DeadLetterFile = "dead-letters.jsonl"

// DeadLetter is one line of the dead-letter file.
type DeadLetter struct {
	Time   time.Time                  `json:"time"`
	Target string                     `json:"target"`
	Table  string                     `json:"table"`
	Source string                     `json:"source"`
	Op     string                     `json:"op"`
	Key    map[string]json.RawMessage `json:"key"`
	Row    map[string]json.RawMessage `json:"row,omitempty"`
	LSN    string                     `json:"lsn"`
	Error  string                     `json:"error"`
}

// DeadLetters appends rejected records to the dead-letter file; a write
// returns only once the lines are on disk, because the records' LSNs are
// acknowledged right after.
type DeadLetters struct {
	mu    sync.Mutex
	path  string
	count int
}

// OpenDeadLetters uses dir's dead-letter file.
func OpenDeadLetters(dir string) *DeadLetters {
	return &DeadLetters{path: filepath.Join(dir, DeadLetterFile)}
}

// Path is the file's location.
func (d *DeadLetters) Path() string { return d.path }

// Write implements pipeline.DeadLetterWriter.
func (d *DeadLetters) Write(target string, spec replicator.TableSpec, rejected []replicator.Rejection) error {
	var buf []byte
	now := time.Now().UTC()
	for _, r := range rejected {
		line := DeadLetter{
			Time: now, Target: target, Table: spec.Table, Source: spec.Source, Op: r.Record.Op.String(),
			Key: fieldsJSON(r.Record.Key), LSN: r.Record.LSN.String(), Error: r.Reason,
		}
		if r.Record.Op == replicator.OpUpsert {
			line.Row = fieldsJSON(r.Record.Fields)
		}
		data, err := json.Marshal(&line)
		if err != nil {
			return fmt.Errorf("dead letters: encode: %w", err)
		}
		buf = append(append(buf, data...), '\n')
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("dead letters: open %s: %w", d.path, err)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return fmt.Errorf("dead letters: write %s: %w", d.path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("dead letters: sync %s: %w", d.path, err)
	}
	d.count += len(rejected)
	return f.Close()
}

// Written counts the dead letters this process wrote.
func (d *DeadLetters) Written() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count
}

func fieldsJSON(fields []replicator.Field) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(fields))
	for _, f := range fields {
		out[f.Name] = replicator.AppendJSON(nil, f.Value)
	}
	return out
}
