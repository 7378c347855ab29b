package config

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/replicator-cdc/replicator/internal/pgdsn"
	"github.com/replicator-cdc/replicator/internal/setting"
	"github.com/replicator-cdc/replicator/mapping"
)

// maxStatusInterval leaves a margin under PostgreSQL's default
// wal_sender_timeout of 60s, after which a silent client is disconnected.
const maxStatusInterval = 30 * time.Second

// minDeadLettersBytes keeps room for many dead letters (each quotes at most
// a few hundred bytes per value) between rotations.
const minDeadLettersBytes = 64 << 10

// maxNameLen is PostgreSQL's limit on identifiers (NAMEDATALEN - 1 bytes).
const maxNameLen = 63

// validate reports every value that decoded but is not allowed, alone or
// together with others.
func (d *decoder) validate(c *Config) {
	d.validateSource(&c.Source)
	if c.State.Dir == "" {
		d.invalid("state.dir", "is empty: set the directory for the checkpoint, snapshot progress, tokens and dead letters")
	}
	if c.State.DeadLettersMaxBytes < minDeadLettersBytes {
		d.invalid("state.dead_letters_max_bytes", "is %d bytes: use at least 64KiB, such as 64MiB", c.State.DeadLettersMaxBytes)
	}
	if schema, table, ok := strings.Cut(c.State.Table, "."); c.State.Store == StorePostgres && (!ok || !validSlotName(schema) || !validSlotName(table)) {
		d.invalid("state.table", "%s is not a schema-qualified table name: use schema.table, each 1 to 63 lower-case letters, digits and _, such as replicator.state", d.quote(c.State.Table, "state.table"))
	}
	d.validatePipeline(&c.Pipeline)
	if msg := listenProblem(c.HTTP.Listen); msg != "" {
		d.invalid("http.listen", "%s %s", d.quote(c.HTTP.Listen, "http.listen"), msg)
	}
	d.validateTargets(c.Targets)
	d.validateMappings(c)
}

func (d *decoder) positive(path string, dur time.Duration) {
	if dur <= 0 {
		d.invalid(path, "is %s: use a duration above zero, such as 10s", dur)
	}
}

func (d *decoder) validateSource(s *Source) {
	if s.DSN == "" {
		d.invalid("source.dsn", "is required: the source database, such as postgres://replicator:${PGPASSWORD}@127.0.0.1:5432/app")
	} else if _, err := pgdsn.Parse(s.DSN); err != nil {
		// Never quoted: a DSN that does not parse may show its password
		// where the host should be.
		d.invalid("source.dsn", "%v", err)
	}
	if !validSlotName(s.Slot) {
		d.invalid("source.slot", "%s is not a replication slot name: use 1 to 63 lower-case letters, digits and _", d.quote(s.Slot, "source.slot"))
	}
	switch {
	case s.Publication == "":
		d.invalid("source.publication", "is empty: name the publication, such as replicator")
	case len(s.Publication) > maxNameLen:
		d.invalid("source.publication", "is longer than PostgreSQL's limit of %d bytes: shorten it", maxNameLen)
	}
	d.positive("source.status_interval", s.StatusInterval)
	if s.StatusInterval > maxStatusInterval {
		d.invalid("source.status_interval", "is %s: use at most %s, since PostgreSQL drops a connection that sends no status for wal_sender_timeout (60s by default)", s.StatusInterval, maxStatusInterval)
	}
	d.positive("source.heartbeat", s.Heartbeat)
}

func validSlotName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for _, c := range []byte(s) {
		if c != '_' && (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func (d *decoder) validatePipeline(p *Pipeline) {
	if p.MaxInFlightBytes <= 0 {
		d.invalid("pipeline.max_in_flight_bytes", "must be more than 0, such as 64MiB")
	}
	switch {
	case p.BatchBytes <= 0:
		d.invalid("pipeline.batch_bytes", "must be more than 0, such as 4MiB")
	case p.MaxInFlightBytes > 0 && p.BatchBytes > p.MaxInFlightBytes:
		d.invalid("pipeline.batch_bytes", "is %d bytes, more than max_in_flight_bytes (%d): a full batch could never be held; lower it or raise max_in_flight_bytes", p.BatchBytes, p.MaxInFlightBytes)
	}
	if p.BatchRows < 0 {
		d.invalid("pipeline.batch_rows", "is %d: use 0 for the most each target accepts, or a positive number", p.BatchRows)
	}
	if p.SnapshotChunkRows <= 0 {
		d.invalid("pipeline.snapshot_chunk_rows", "is %d: use a positive number, such as 5000", p.SnapshotChunkRows)
	}
	d.positive("pipeline.flush_interval", p.FlushInterval)
	d.positive("pipeline.shutdown_timeout", p.ShutdownTimeout)
}

func listenProblem(listen string) string {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "is not host:port: use for example 127.0.0.1:9188, or :9188 for every interface"
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "has no valid port: use a number from 0 to 65535"
	}
	return ""
}

func (d *decoder) validateTargets(targets map[string]*Target) {
	if len(targets) == 0 {
		d.invalid("targets", "none defined: define at least one target of type %s or %s", TypeFeishu, TypeGPTBots)
	}
	for _, name := range slices.Sorted(maps.Keys(targets)) {
		t, p := targets[name], "targets."+name
		if !validTargetName(name) {
			d.invalid(p, "%q is not a usable target name: use letters, digits, _ and -, since it appears in state file names and metric labels", name)
		}
		if t.Type == "" {
			d.invalid(p+".type", "is required: use %s or %s", TypeFeishu, TypeGPTBots)
			continue
		}
		var problems setting.Problems
		switch {
		case t.Feishu != nil:
			problems = t.Feishu.Problems()
		case t.GPTBots != nil:
			problems = t.GPTBots.Problems()
		}
		for _, pr := range problems {
			d.targetProblem(p, pr)
		}
	}
}

// targetProblem reports a problem a target package found in its settings.
func (d *decoder) targetProblem(target string, pr setting.Problem) {
	path := target
	if pr.Key != "" {
		path = target + "." + pr.Key
	}
	for _, from := range pr.From {
		if d.badUnder(target + "." + from) {
			return
		}
	}
	if pr.Quoted {
		d.invalid(path, "%s %s", d.quote(pr.Value, path), pr.Msg)
		return
	}
	d.invalid(path, "%s", pr.Msg)
}

// badUnder reports whether the value at path, or one under it, could not be
// decoded.
func (d *decoder) badUnder(path string) bool {
	for p := range d.bad {
		if p == path || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			return true
		}
	}
	return false
}

func validTargetName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range []byte(name) {
		if c != '_' && c != '-' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func (d *decoder) validateMappings(c *Config) {
	if len(c.Mappings) == 0 {
		d.invalid("mappings", "none defined: list at least one mapping from a source table to a target table")
	}
	bySource := map[string]int{}
	byTable := map[[2]string]int{}
	for i, m := range c.Mappings {
		p := fmt.Sprintf("mappings[%d]", i)
		if m.Source == "" {
			d.invalid(p+".source", "is required: the source table, as schema.table")
		} else if j, dup := bySource[m.Source]; dup && c.Mappings[j].Where != m.Where {
			d.invalid(p+".where", "differs from the where: of mappings[%d] at line %d, which maps the same source table: the publication holds one row filter per table, so give every mapping of %s the same where:", j, c.Mappings[j].Line, d.quote(m.Source, p+".source"))
		} else if !dup {
			bySource[m.Source] = i
		}
		target := c.Targets[m.Target]
		switch {
		case m.Target == "":
			d.invalid(p+".target", "is required: name one of the targets (%s)", strings.Join(slices.Sorted(maps.Keys(c.Targets)), ", "))
		case target == nil && !d.bad["targets"]:
			d.invalid(p+".target", "%s is not a target: define it under targets, or use one of %s", d.quote(m.Target, p+".target"), strings.Join(slices.Sorted(maps.Keys(c.Targets)), ", "))
		}
		if m.Table == "" {
			d.invalid(p+".table", "is required: the Feishu table name or the GPTBots table_id")
		} else if m.Target != "" {
			pair := [2]string{m.Target, m.Table}
			if j, dup := byTable[pair]; dup {
				d.invalid(p+".table", "target %s table %s is already written by mappings[%d] at line %d: write each target table from one source table", d.quote(m.Target, p+".target"), d.quote(m.Table, p+".table"), j, c.Mappings[j].Line)
			} else {
				byTable[pair] = i
			}
		}
		d.validateColumns(m, p)
		d.validateKey(m, target, p)
		if m.OnDelete.Mode == mapping.DeleteSoft && m.OnDelete.SoftColumn == "" {
			d.invalid(p+".on_delete.soft", "is required: name the target column a delete sets to true")
		}
	}
}

func (d *decoder) validateColumns(m *Mapping, p string) {
	if _, set := d.lines[p+".on_missing_column"]; set && !m.ColumnsGiven {
		d.invalid(p+".on_missing_column", "applies to listed columns, and this mapping lists none (it copies every column, leaving out those the target lacks): remove it, or list the columns")
	}
	if m.ColumnsGiven && len(m.Columns) == 0 {
		d.invalid(p+".columns", "is empty: list the columns to copy, or leave columns out to copy every column")
	}
	byName := map[string]string{}
	for _, col := range m.Columns {
		cp := p + ".columns." + col.Source
		if col.Name == "" {
			d.invalid(cp, "has an empty target name: name the target column, or leave the value empty to keep %q", col.Source)
			continue
		}
		if other, dup := byName[col.Name]; dup {
			d.invalid(cp, "writes target column %s, which %s already writes: give each source column its own target column", d.quote(col.Name, cp, cp+".name"), other)
			continue
		}
		byName[col.Name] = col.Source
	}
}

// validateKey checks the conflict key. When key is left out the primary key
// is used, and its columns are only known from the source catalog: the
// startup checks cover it then.
func (d *decoder) validateKey(m *Mapping, target *Target, p string) {
	if m.Key == nil {
		return
	}
	if len(m.Key) == 0 {
		d.invalid(p+".key", "is empty: list the conflict key's columns, or leave key out to use the primary key")
		return
	}
	if target != nil && target.Type == TypeGPTBots && len(m.Key) > 1 {
		d.invalid(p+".key", "has %d columns, but a %s table matches rows on one unique field: use a single column", len(m.Key), TypeGPTBots)
	}
	seen := map[string]bool{}
	for i, k := range m.Key {
		kp := fmt.Sprintf("%s.key[%d]", p, i)
		switch {
		case k == "":
			d.invalid(kp, "is empty: name a source column")
			continue
		case seen[k]:
			d.invalid(kp, "%s is listed twice: list each key column once", d.quote(k, kp, p+".key"))
			continue
		}
		seen[k] = true
		name := k
		if m.ColumnsGiven {
			i := slices.IndexFunc(m.Columns, func(c Column) bool { return c.Source == k })
			if i < 0 {
				d.invalid(kp, "%s is not in columns: add it to columns, since the key must be written", d.quote(k, kp, p+".key"))
				continue
			}
			name = m.Columns[i].Name
		}
		if m.OnDelete.Mode == mapping.DeleteSoft && name != "" && name == m.OnDelete.SoftColumn {
			d.invalid(p+".on_delete.soft", "%s is a key column: a soft delete must set a column outside the key", d.quote(name, p+".on_delete.soft"))
		}
	}
}
