// Package config reads the replicator's YAML configuration file: defaults,
// then strict decoding with ${VAR} expansion of values, then validation.
// Every problem of a file is reported at once, each with the file, the line
// and the YAML path, and no error ever carries a secret.
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/replicator-cdc/replicator/internal/pgdsn"
	"github.com/replicator-cdc/replicator/mapping"
	"github.com/replicator-cdc/replicator/targets/feishu"
	"github.com/replicator-cdc/replicator/targets/gptbots"
)

// Target types.
const (
	TypeFeishu  = "feishu"
	TypeGPTBots = "gptbots"
)

// Config is a whole configuration file, defaults applied and validated.
type Config struct {
	Source   Source
	State    State
	Pipeline Pipeline
	Log      Log
	HTTP     HTTP
	// Targets maps each target name to its target.
	Targets map[string]*Target
	// Mappings are in file order.
	Mappings []*Mapping
}

// Source is the PostgreSQL database to replicate from.
type Source struct {
	// DSN is a postgres:// URL or libpq key=value string. It may carry a
	// password: show RedactedDSN instead.
	DSN string
	// Slot is the logical replication slot, created when missing.
	Slot string
	// Publication is created when missing, covering the mapped tables.
	Publication string
	// StatusInterval is the longest time between standby status updates.
	StatusInterval time.Duration
	// Heartbeat is the period of the WAL heartbeat message.
	Heartbeat time.Duration
}

// State is where what survives a restart is kept.
type State struct {
	// Dir is relative to the working directory unless absolute.
	Dir string
	// DeadLettersMaxBytes caps the dead-letter file; past it the file is
	// rotated, keeping one older file.
	DeadLettersMaxBytes int64
	// Store is StoreFiles (state.json and tokens in Dir) or StorePostgres
	// (in Table, in the source database, shared by a standby).
	Store string
	// Table is the schema-qualified table of StorePostgres.
	Table string
}

// Where State.Store keeps the checkpoint, snapshot progress and tokens.
const (
	StoreFiles    = "files"
	StorePostgres = "postgres"
)

// Pipeline bounds batching and memory.
type Pipeline struct {
	// MaxInFlightBytes bounds the memory of changes not yet confirmed.
	MaxInFlightBytes int64
	// FlushInterval is the longest a change waits for its batch to fill.
	FlushInterval time.Duration
	// BatchRows caps the rows of one request; 0 means the most the target
	// accepts.
	BatchRows int
	// BatchBytes caps the encoded size of one request.
	BatchBytes int64
	// SnapshotChunkRows is the number of rows read per snapshot query and
	// the unit in which snapshot progress is saved.
	SnapshotChunkRows int
	// ShutdownTimeout bounds the drain on SIGTERM.
	ShutdownTimeout time.Duration
}

// Log configures the logger.
type Log struct {
	// Level is debug, info, warn or error.
	Level string
	// Format is auto (text on a terminal, JSON otherwise), text or json.
	Format string
}

// HTTP configures the metrics and health endpoint.
type HTTP struct {
	// Listen is a host:port; an empty host listens on every interface.
	Listen string
}

// Target is one Feishu aPaaS workspace or GPTBots Agent database. Its
// settings are the target package's own configuration type, which owns their
// defaults and validation.
type Target struct {
	// Name is the key under targets.
	Name string
	// Type is TypeFeishu or TypeGPTBots.
	Type string
	// Feishu is the configuration of a TypeFeishu target, nil otherwise.
	Feishu *feishu.Config
	// GPTBots is the configuration of a TypeGPTBots target, nil otherwise.
	GPTBots *gptbots.Config
	// Line is where the target is defined.
	Line int
}

// Mapping copies one source table to one target table.
type Mapping struct {
	// Source is "schema.table"; a bare table name means the public schema.
	Source string
	// Target names an entry of Config.Targets.
	Target string
	// Table is the Feishu table name or the GPTBots table_id.
	Table string
	// Key lists the source columns of the conflict key; nil means the
	// primary key, which is resolved at startup.
	Key []string
	// Columns are in file order; when ColumnsGiven is false every source
	// column is copied under its own name and Columns is empty.
	Columns      []Column
	ColumnsGiven bool
	OnDelete     OnDelete
	OnTruncate   mapping.TruncatePolicy
	OnReject     mapping.RejectPolicy
	// OnMissingColumn is what a listed column the source table no longer
	// has does.
	OnMissingColumn mapping.MissingPolicy
	// Snapshot copies the existing rows before streaming.
	Snapshot bool
	// Where is a SQL boolean expression over the source table's columns:
	// the publication's row filter and the snapshot's predicate ("": every row).
	Where string
	// Line is where the mapping starts.
	Line int
}

// Column maps one source column.
type Column struct {
	// Source is the source column.
	Source string
	// Name is the target column.
	Name string
	// Format is mapping.FormatDefault or another of mapping's Format
	// constants.
	Format string
	// Line is where the column is listed.
	Line int
}

// OnDelete says what a source delete becomes.
type OnDelete struct {
	Mode mapping.DeleteMode
	// SoftColumn is the target column a soft delete sets to true.
	SoftColumn string
}

// Load reads and parses the configuration file at path. env looks up
// environment variables for ${VAR} expansion; nil means os.LookupEnv.
func Load(path string, env func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return Parse(path, data, env)
}

// Parse parses a configuration file's contents; name is the file name used in
// error messages. env looks up environment variables for ${VAR} expansion;
// nil means os.LookupEnv.
//
// Expansion applies to the parsed values, not to the raw text: comments are
// never expanded, and a variable's value is always a plain string (a secret
// holding "#", ": " or quotes cannot change the file's structure).
func Parse(name string, data []byte, env func(string) (string, bool)) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	root, perr := document(data)
	if perr != nil {
		perr.file = name
		return nil, perr
	}
	d := &decoder{file: name, env: env, lines: map[string]int{}, raw: map[string]string{}, bad: map[string]bool{}}
	cfg := defaults()
	d.config(root, cfg)
	d.validate(cfg)
	if len(d.problems) > 0 {
		// File order reads best, whichever phase found the problem.
		slices.SortStableFunc(d.problems, func(a, b *problem) int { return a.line - b.line })
		errs := make([]error, len(d.problems))
		for i, p := range d.problems {
			errs[i] = p
		}
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

// defaults returns a Config holding every default that does not depend on a
// target's type.
func defaults() *Config {
	return &Config{
		Source: Source{
			Slot:           "replicator",
			Publication:    "replicator",
			StatusInterval: 10 * time.Second,
			Heartbeat:      30 * time.Second,
		},
		State: State{Dir: "./replicator-state", DeadLettersMaxBytes: 64 << 20, Store: StoreFiles, Table: "replicator.state"},
		Pipeline: Pipeline{
			MaxInFlightBytes:  64 << 20,
			FlushInterval:     time.Second,
			BatchBytes:        4 << 20,
			SnapshotChunkRows: 5000,
			ShutdownTimeout:   30 * time.Second,
		},
		Log:     Log{Level: "info", Format: "auto"},
		HTTP:    HTTP{Listen: "127.0.0.1:9188"},
		Targets: map[string]*Target{},
	}
}

func newMapping(line int) *Mapping {
	return &Mapping{
		OnDelete:        OnDelete{Mode: mapping.DeleteRow},
		OnTruncate:      mapping.TruncateHalt,
		OnReject:        mapping.RejectDeadLetter,
		OnMissingColumn: mapping.MissingHalt,
		Snapshot:        true,
		Line:            line,
	}
}

// document parses data into its root node. An empty file is an empty
// mapping, so that it fails validation with the list of what is missing.
func document(data []byte) (*yaml.Node, *problem) {
	text, restore := protect(data)
	dec := yaml.NewDecoder(strings.NewReader(text))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &yaml.Node{Kind: yaml.MappingNode}, nil
		}
		return nil, syntaxProblem(err, restore)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxProblem(err, restore)
	default:
		return nil, &problem{line: next.Line, msg: "a second YAML document starts here; keep the whole configuration in one document"}
	}
	restoreRefs(&doc, restore)
	return doc.Content[0], nil
}

// restoreRefs puts the references protect replaced back into every scalar,
// keys included. Aliases are not followed, so each node is visited once.
func restoreRefs(n *yaml.Node, restore *strings.Replacer) {
	if n.Kind == yaml.ScalarNode {
		n.Value = restore.Replace(n.Value)
	}
	for _, c := range n.Content {
		restoreRefs(c, restore)
	}
}

// syntaxProblem takes the line out of yaml's "yaml: line 3: msg" so that it
// reads like every other message, and shows references as written rather
// than as placeholders.
func syntaxProblem(err error, restore *strings.Replacer) *problem {
	msg := restore.Replace(strings.TrimPrefix(err.Error(), "yaml: "))
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if line, convErr := strconv.Atoi(num); convErr == nil {
				return &problem{line: line, msg: text}
			}
		}
	}
	return &problem{msg: msg}
}

// RedactedDSN returns the DSN with its password replaced by "xxxxx", for
// messages and logs.
func (s Source) RedactedDSN() string {
	return pgdsn.Redact(s.DSN)
}
