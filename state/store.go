package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
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
	// Resync says a person asked for this copy, having emptied the target
	// table: the copy then records ResyncSnapshot, a transaction snapshot
	// (pg_current_snapshot) taken before it. Changes of transactions it
	// sees are already in the copied rows, and the stream skips them if
	// they come before ResyncBefore (so a TRUNCATE that a resync answers is
	// not met again). Without an emptied target, a skipped delete would
	// leave a row behind, so no other copy skips anything.
	Resync         bool   `json:"resync,omitempty"`
	ResyncSnapshot string `json:"resync_snapshot,omitempty"`
	ResyncBefore   string `json:"resync_before,omitempty"`
	// Online says the table is (being) copied beside the stream, between
	// watermarks, rather than by the start-up snapshot; Done ends it. Its
	// LastKey is the last key of the last chunk the stream acknowledged,
	// in the order of KeyColumns, Rows and Chunks what it copied up to
	// there: a restart resumes after it (ResumeAfter).
	Online     bool     `json:"online,omitempty"`
	KeyColumns []string `json:"key_columns,omitempty"`
	Chunks     int      `json:"chunks,omitempty"`
}

// ResumeAfter is the key after which an unfinished online resync read in
// the order of keyColumns goes on. It is nil, and the copy starts over from
// the table's first key, when no chunk was acknowledged yet, when a daemon
// that did not save the key wrote the progress, or when the key was saved
// for other key columns (the mapping changed since).
func (p TableProgress) ResumeAfter(keyColumns []string) [][]byte {
	if !p.Online || p.Done || len(p.LastKey) == 0 || !slices.Equal(p.KeyColumns, keyColumns) {
		return nil
	}
	after := make([][]byte, len(p.LastKey))
	for i, k := range p.LastKey {
		after[i] = []byte(k)
	}
	return after
}

// SlotIdentity is what tells the slot the state follows from a slot of the
// same name elsewhere: the server's system identifier and the database.
type SlotIdentity struct {
	SystemID    string `json:"system_id"`
	Database    string `json:"database"`
	DatabaseOID uint32 `json:"database_oid"`
}

type document struct {
	Slot       string                    `json:"slot"`
	Identity   *SlotIdentity             `json:"slot_identity,omitempty"`
	Checkpoint string                    `json:"checkpoint"`
	Tables     map[string]*TableProgress `json:"tables"`
	UpdatedAt  time.Time                 `json:"updated_at"`
}

// Store is the document state.json, in the state directory or a shared
// store (see Docs). Every save is atomic and durable before it returns.
type Store struct {
	dir  string
	docs Docs
	mu   sync.Mutex
	doc  document
}

// StateFile is the name of the document Store keeps.
const StateFile = "state.json"

// ErrStorage marks a failure to save the state: a person must make room or
// fix the directory, since nothing may be acknowledged that is not saved.
var ErrStorage = errors.New("state: cannot save")

// Open creates the directory when missing and loads its state.
func Open(dir string) (*Store, error) {
	return OpenIn(dir, Dir(dir))
}

// OpenIn loads the state kept in docs; dir is the state directory, which
// keeps the dead letters whichever Docs keeps the state.
func OpenIn(dir string, docs Docs) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state: create %s: %w", dir, err)
	}
	s := &Store{dir: dir, docs: docs, doc: document{Tables: map[string]*TableProgress{}}}
	data, found, err := docs.Load(StateFile)
	if err != nil {
		return nil, err
	}
	if !found {
		return s, nil
	}
	if err := json.Unmarshal(data, &s.doc); err != nil {
		return nil, fmt.Errorf("state: %s is corrupt (%v): move it away to start over with a full resync", docs.Where(StateFile), err)
	}
	if s.doc.Tables == nil {
		s.doc.Tables = map[string]*TableProgress{}
	}
	return s, nil
}

// Dir is the state directory.
func (s *Store) Dir() string { return s.dir }

// Docs is where the state and the tokens are kept.
func (s *Store) Docs() Docs { return s.docs }

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

// Identity is what identifies the slot the state follows; nil when a
// daemon that did not record it wrote the state.
func (s *Store) Identity() *SlotIdentity {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.doc.Identity == nil {
		return nil
	}
	id := *s.doc.Identity
	return &id
}

// Bind forgets the checkpoint and every table's progress and follows slot
// from checkpoint: a new slot means every table is copied again.
func (s *Store) Bind(slot string, id SlotIdentity, checkpoint replicator.LSN) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc = document{Slot: slot, Identity: &id, Checkpoint: checkpoint.String(), Tables: map[string]*TableProgress{}}
	return s.save()
}

// Rebind follows slot from checkpoint, keeping every table's progress: the
// changes between the old checkpoint and the new one are given up.
func (s *Store) Rebind(slot string, id SlotIdentity, checkpoint replicator.LSN) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc.Slot, s.doc.Identity, s.doc.Checkpoint = slot, &id, checkpoint.String()
	return s.save()
}

// SetIdentity records the identity of the slot already followed.
func (s *Store) SetIdentity(id SlotIdentity) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc.Identity = &id
	return s.save()
}

// Unbind forgets the slot, the checkpoint and every table's progress: the
// next start follows the slot from where it is and copies every table.
func (s *Store) Unbind() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc = document{Tables: map[string]*TableProgress{}}
	return s.save()
}

// RequestResync drops a table's snapshot progress and marks it for a
// resync: the next start copies it again.
func (s *Store) RequestResync(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc.Tables[name] = &TableProgress{Resync: true}
	return s.save()
}

func (s *Store) save() error {
	s.doc.UpdatedAt = time.Now().UTC()
	data, err := json.MarshalIndent(&s.doc, "", "  ")
	if err != nil {
		return fmt.Errorf("state: encode: %w", err)
	}
	if err := s.docs.Save(StateFile, data); err != nil {
		// Nothing is acknowledged that is not saved, so stopping here
		// loses nothing: the next start resumes from the last save.
		return fmt.Errorf("%w: %w: the state could not be saved to %s: free space on its file system, or fix its permissions or whatever is in its way (with state.store: postgres, the state table and the role's rights on it), then start again; nothing was acknowledged to PostgreSQL past the last saved checkpoint",
			ErrStorage, err, s.docs.Where(StateFile))
	}
	return nil
}
