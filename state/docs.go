package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Docs keeps the named documents that must survive a restart and, when two
// instances take turns, pass from one to the other: state.json and each
// OAuth target's tokens. Save returns once the document is durable.
type Docs interface {
	Load(name string) (data []byte, found bool, err error)
	Save(name string, data []byte) error
	// Where names a document's place for messages: a file or a table row.
	Where(name string) string
}

// Dir keeps documents as files of a directory, each replaced atomically.
type Dir string

// Load reads a document; found is false when there is none.
func (d Dir) Load(name string) ([]byte, bool, error) {
	data, err := os.ReadFile(d.Where(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state: read: %w", err)
	}
	return data, true, nil
}

// Save replaces a document durably, creating the directory when missing.
func (d Dir) Save(name string, data []byte) error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("state: create %s: %w", string(d), err)
	}
	return WriteFileAtomic(d.Where(name), data, 0o600)
}

// Where is the document's file.
func (d Dir) Where(name string) string { return filepath.Join(string(d), name) }
