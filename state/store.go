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

// TableProgress is one table's initial snapshot progress.
type TableProgress struct {
	Done bool `json:"done"`
	// LastKey is the source text of the key of the last confirmed row.
	LastKey []string `json:"last_key,omitempty"`
	Rows    int64    `json:"rows"`
}

type document struct {
	Slot       string                    `json:"slot"`
	Checkpoint string                    `json:"checkpoint"`
	Tables     map[string]*TableProgress `json:"tables"`
	UpdatedAt  time.Time                 `json:"updated_at"`
}

// Store is the state directory's state.json. Every save is atomic and
// durable before it returns.
type Store struct {
	dir string
	mu  sync.Mutex
	doc document
}

const stateFile = "state.json"

// Open creates the directory when missing and loads its state.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state: create %s: %w", dir, err)
	}
	s := &Store{dir: dir, doc: document{Tables: map[string]*TableProgress{}}}
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: read: %w", err)
	}
	if err := json.Unmarshal(data, &s.doc); err != nil {
		return nil, fmt.Errorf("state: %s is corrupt (%v): move it away to start over with a full resync", filepath.Join(dir, stateFile), err)
	}
	if s.doc.Tables == nil {
		s.doc.Tables = map[string]*TableProgress{}
	}
	return s, nil
}

// Dir is the state directory.
func (s *Store) Dir() string { return s.dir }

// Checkpoint is the last acknowledged position saved (0 when none).
func (s *Store) Checkpoint() replicator.LSN {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.doc.Checkpoint == "" {
		return 0
	}
	lsn, err := replicator.ParseLSN(s.doc.Checkpoint)
	if err != nil {
		return 0
	}
	return lsn
}

// Slot names the slot the saved progress belongs to.
func (s *Store) Slot() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.doc.Slot
}

// SaveCheckpoint durably records an acknowledged position.
func (s *Store) SaveCheckpoint(lsn replicator.LSN) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc.Checkpoint = lsn.String()
	return s.save()
}

// Table returns a copy of a table's snapshot progress.
func (s *Store) Table(name string) TableProgress {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.doc.Tables[name]; ok {
		return *p
	}
	return TableProgress{}
}

// Tables returns a copy of every table's progress.
func (s *Store) Tables() map[string]TableProgress {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]TableProgress, len(s.doc.Tables))
	for k, v := range s.doc.Tables {
		out[k] = *v
	}
	return out
}

// SaveTable durably records a table's snapshot progress.
func (s *Store) SaveTable(name string, p TableProgress) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc.Tables[name] = &p
	return s.save()
}

// Reset forgets the checkpoint and every table's progress: a new slot
// means every table is copied again.
func (s *Store) Reset(slot string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc = document{Slot: slot, Tables: map[string]*TableProgress{}}
	return s.save()
}

func (s *Store) save() error {
	s.doc.UpdatedAt = time.Now().UTC()
	data, err := json.MarshalIndent(&s.doc, "", "  ")
	if err != nil {
		return fmt.Errorf("state: encode: %w", err)
	}
	return WriteFileAtomic(filepath.Join(s.dir, stateFile), data, 0o600)
}
