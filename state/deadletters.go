package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/replicator-cdc/replicator"
)

// DeadLetterFile is the name of the dead-letter file in the state directory;
// RotatedDeadLetterFile holds the lines before the last rotation.
const (
	DeadLetterFile        = "dead-letters.jsonl"
	RotatedDeadLetterFile = "dead-letters.1.jsonl"
)

// MaxQuotedBytes bounds each value quoted in a dead letter and the error
// text: a dead letter says which value was refused, it does not carry a
// megabyte of it.
const MaxQuotedBytes = 256

// maxErrorBytes bounds a dead letter's error text, which may quote values.
const maxErrorBytes = 1024

// DeadLetter is one line of the dead-letter file. A line with a Column is a
// refused value: the rest of the record was written without it. A line
// without one is a refused record.
type DeadLetter struct {
	Time   time.Time                  `json:"time"`
	Target string                     `json:"target"`
	Table  string                     `json:"table"`
	Source string                     `json:"source"`
	Op     string                     `json:"op"`
	Key    map[string]json.RawMessage `json:"key"`
	Row    map[string]json.RawMessage `json:"row,omitempty"`
	Column string                     `json:"column,omitempty"`
	// Value is the refused value's text, as a JSON string.
	Value json.RawMessage `json:"value,omitempty"`
	// Truncated gives the full length in bytes of each value quoted only
	// as its first MaxQuotedBytes bytes (then a JSON string), by
	// "key.<column>", "row.<column>" or "value".
	Truncated map[string]int `json:"truncated,omitempty"`
	LSN       string         `json:"lsn"`
	Error     string         `json:"error"`
}

// DeadLetters appends rejected records to the dead-letter file; a write
// returns only once the lines are on disk, because the records' LSNs are
// acknowledged right after. When the file would grow past its cap it is
// renamed to RotatedDeadLetterFile (replacing the one before) and a new
// file is started.
type DeadLetters struct {
	mu       sync.Mutex
	dir      string
	maxBytes int64
	count    int
}

// OpenDeadLetters uses dir's dead-letter file, rotating it at maxBytes.
func OpenDeadLetters(dir string, maxBytes int64) *DeadLetters {
	return &DeadLetters{dir: dir, maxBytes: maxBytes}
}

// Path is the file's location.
func (d *DeadLetters) Path() string { return filepath.Join(d.dir, DeadLetterFile) }

// Write implements pipeline.DeadLetterWriter.
func (d *DeadLetters) Write(target string, spec replicator.TableSpec, rejected []replicator.Rejection) error {
	var buf []byte
	now := time.Now().UTC()
	for _, r := range rejected {
		data, err := json.Marshal(letter(now, target, spec, r))
		if err != nil {
			return fmt.Errorf("dead letters: encode: %w", err)
		}
		buf = append(append(buf, data...), '\n')
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.append(buf); err != nil {
		return err
	}
	d.count += len(rejected)
	return nil
}

func letter(now time.Time, target string, spec replicator.TableSpec, r replicator.Rejection) *DeadLetter {
	l := &DeadLetter{
		Time: now, Target: target, Table: spec.Table, Source: spec.Source, Op: r.Record.Op.String(),
		Column: r.Column, LSN: r.Record.LSN.String(), Error: replicator.Abbreviate(r.Reason, maxErrorBytes),
	}
	l.Key = l.quoteFields("key.", r.Record.Key)
	switch {
	case r.Column != "":
		l.Value = l.quote("value", replicator.Value{Kind: replicator.KindText, Raw: r.Value})
	case r.Record.Op == replicator.OpUpsert:
		l.Row = l.quoteFields("row.", r.Record.Fields)
	}
	return l
}

func (l *DeadLetter) quoteFields(prefix string, fields []replicator.Field) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(fields))
	for _, f := range fields {
		out[f.Name] = l.quote(prefix+f.Name, f.Value)
	}
	return out
}

// quote is v as JSON, or a JSON string of the first MaxQuotedBytes bytes of
// its text when it is longer, noted in Truncated.
func (l *DeadLetter) quote(name string, v replicator.Value) json.RawMessage {
	if len(v.Raw) <= MaxQuotedBytes {
		return replicator.AppendJSON(nil, v)
	}
	if l.Truncated == nil {
		l.Truncated = map[string]int{}
	}
	l.Truncated[name] = len(v.Raw)
	cut := MaxQuotedBytes
	for cut > 0 && v.Raw[cut]&0xC0 == 0x80 {
		cut--
	}
	return replicator.AppendJSONString(nil, v.Raw[:cut])
}

// append writes buf at the end of the file, rotating first when buf would
// take the file past its cap, and syncs the file (and the directory when
// the file is new) before returning.
func (d *DeadLetters) append(buf []byte) error {
	path := d.Path()
	fresh := false
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		fresh = true
	case err != nil:
		return fmt.Errorf("dead letters: %w", err)
	case info.Size() > 0 && info.Size()+int64(len(buf)) > d.maxBytes:
		if err := os.Rename(path, filepath.Join(d.dir, RotatedDeadLetterFile)); err != nil {
			return fmt.Errorf("dead letters: rotate %s: %w", path, err)
		}
		fresh = true
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("dead letters: open %s: %w", path, err)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return fmt.Errorf("dead letters: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("dead letters: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("dead letters: write %s: %w", path, err)
	}
	if fresh {
		return syncDir(d.dir)
	}
	return nil
}

// Written counts the dead letters this process wrote.
func (d *DeadLetters) Written() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count
}
