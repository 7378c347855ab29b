package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/replicator-cdc/replicator/mapping"
	"github.com/replicator-cdc/replicator/targets/feishu"
	"github.com/replicator-cdc/replicator/targets/gptbots"
)

// problem is one thing wrong with a configuration file.
type problem struct {
	file string
	line int // 0 when unknown, for example for a missing section
	path string
	msg  string
}

func (p *problem) Error() string {
	var b strings.Builder
	b.WriteString(p.file)
	if p.line > 0 {
		fmt.Fprintf(&b, ":%d", p.line)
	}
	b.WriteString(": ")
	if p.path != "" {
		b.WriteString(p.path)
		b.WriteString(": ")
	}
	b.WriteString(p.msg)
	return b.String()
}

// decoder walks the YAML node tree by hand rather than through yaml's
// reflection-based decoding (and its KnownFields option): values must be
// expanded before they are typed, and every unknown key, wrong type and
// invalid value is collected with its line and path instead of stopping at
// the first.
type decoder struct {
	file     string
	env      func(string) (string, bool)
	problems []*problem
	// lines holds the line of every key decoded, by YAML path, for the
	// messages of validation.
	lines map[string]int
	// raw holds the value as written of every path whose value expansion
	// changed, so that messages can show it instead of what may be a secret.
	raw map[string]string
	// bad holds the paths whose value could not be decoded; validation
	// stays quiet about them and everything under them, since the first
	// message already says what to fix.
	bad map[string]bool
}

// handler decodes the value at path.
type handler func(v *yaml.Node, path string)

func (d *decoder) report(line int, path, format string, args ...any) {
	d.problems = append(d.problems, &problem{file: d.file, line: line, path: path, msg: fmt.Sprintf(format, args...)})
}

// fail reports a value that could not be decoded.
func (d *decoder) fail(line int, path, format string, args ...any) {
	d.bad[path] = true
	d.report(line, path, format, args...)
}

// invalid reports a decoded value that is not allowed, at the line of path or
// of its nearest ancestor.
func (d *decoder) invalid(path, format string, args ...any) {
	for p := path; ; p = parent(p) {
		if d.bad[p] {
			return
		}
		if p == "" {
			break
		}
	}
	line := 0
	for p := path; p != ""; p = parent(p) {
		if l, ok := d.lines[p]; ok {
			line = l
			break
		}
	}
	d.report(line, path, format, args...)
}

func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// deref follows an alias to its anchored node.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	default:
		return "a single value"
	}
}

func (d *decoder) wrongKind(n *yaml.Node, path, want string) {
	d.fail(n.Line, path, "expected %s, got %s", want, kindName(n))
}

// entries calls each for every key of the mapping node n. A null n (a key
// left empty) is an empty mapping, so that the section keeps its defaults.
func (d *decoder) entries(n *yaml.Node, path, want string, each func(k, v *yaml.Node, path string)) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.wrongKind(n, path, want)
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.report(k.Line, path, "a key must be a name, not %s", kindName(k))
			continue
		}
		p := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.report(k.Line, p, "repeated key, already set at line %d: keep one", first)
			continue
		}
		seen[k.Value] = k.Line
		d.lines[p] = k.Line
		each(k, v, p)
	}
}

// fields decodes a mapping with a fixed set of keys; any other key is an
// error.
func (d *decoder) fields(n *yaml.Node, path string, known map[string]handler) {
	d.entries(n, path, "a mapping", func(k, v *yaml.Node, p string) {
		h, ok := known[k.Value]
		if !ok {
			d.unknownKey(k, p, known)
			return
		}
		h(v, p)
	})
}

func (d *decoder) unknownKey(k *yaml.Node, path string, known map[string]handler) {
	d.report(k.Line, path, "unknown key %q%s", k.Value, suggest(k.Value, known))
}

// suggest names the known key closest to a misspelt one, if any is close.
func suggest(key string, known map[string]handler) string {
	best, bestDist := "", 3
	for _, name := range slices.Sorted(maps.Keys(known)) {
		if dist := editDistance(key, name); dist < bestDist {
			best, bestDist = name, dist
		}
	}
	if best == "" {
		return fmt.Sprintf("; known keys: %s", strings.Join(slices.Sorted(maps.Keys(known)), ", "))
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// text returns the expanded value of the scalar v. ok is false when v is null
// (the key keeps its default) or when it could not be decoded (reported).
// raw is the value as written, for messages: it never holds a variable's
// value.
func (d *decoder) text(v *yaml.Node, path, want string) (raw, val string, ok bool) {
	v = deref(v)
	if isNull(v) {
		return "", "", false
	}
	if v.Kind != yaml.ScalarNode {
		d.wrongKind(v, path, want)
		return "", "", false
	}
	val, err := expandEnv(v.Value, d.env)
	if err != nil {
		line := v.Line + strings.Count(v.Value[:err.offset], "\n")
		if v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			line++ // the text of a block scalar starts below its indicator
		}
		d.fail(line, path, "%s", err.msg)
		return "", "", false
	}
	if val != v.Value {
		d.raw[path] = v.Value
	}
	return v.Value, val, true
}

// quote quotes a decoded value for a message; if it was read from the first
// of paths with an expanded value, it is shown as written.
func (d *decoder) quote(val string, paths ...string) string {
	for _, p := range paths {
		if raw, ok := d.raw[p]; ok {
			return shown(raw, val)
		}
	}
	return strconv.Quote(val)
}

// shown quotes a value for a message. A value that came from the environment
// is shown as written, since the variable may hold a secret.
func shown(raw, val string) string {
	if raw != val {
		return fmt.Sprintf("the expansion of %q", raw)
	}
	return strconv.Quote(val)
}

func (d *decoder) str(dst *string) handler {
	return func(v *yaml.Node, path string) {
		if _, val, ok := d.text(v, path, "text"); ok {
			*dst = val
		}
	}
}

// url decodes a URL, dropping trailing slashes so that paths can be appended.
func (d *decoder) url(dst *string) handler {
	return func(v *yaml.Node, path string) {
		if _, val, ok := d.text(v, path, "a URL"); ok {
			*dst = strings.TrimRight(val, "/")
		}
	}
}

// enum decodes one of choices; it is a function because methods cannot have
// type parameters.
func enum[T ~string](d *decoder, dst *T, choices ...T) handler {
	names := make([]string, len(choices))
	for i, c := range choices {
		names[i] = string(c)
	}
	list := strings.Join(names, ", ")
	return func(v *yaml.Node, path string) {
		raw, val, ok := d.text(v, path, "one of "+list)
		if !ok {
			return
		}
		if !slices.Contains(names, val) {
			d.fail(deref(v).Line, path, "unknown value %s: use one of %s", shown(raw, val), list)
			return
		}
		*dst = T(val)
	}
}

func (d *decoder) duration(dst *time.Duration) handler {
	return func(v *yaml.Node, path string) {
		raw, val, ok := d.text(v, path, "a duration")
		if !ok {
			return
		}
		dur, err := time.ParseDuration(val)
		if err != nil {
			d.fail(deref(v).Line, path, "expected a duration such as 10s, 500ms or 1m30s, got %s", shown(raw, val))
			return
		}
		*dst = dur
	}
}

func (d *decoder) size(dst *int64) handler {
	return func(v *yaml.Node, path string) {
		raw, val, ok := d.text(v, path, "a size")
		if !ok {
			return
		}
		n, err := parseSize(val)
		if err != nil {
			d.fail(deref(v).Line, path, "%v, got %s", err, shown(raw, val))
			return
		}
		*dst = n
	}
}

func (d *decoder) integer(dst *int) handler {
	return func(v *yaml.Node, path string) {
		raw, val, ok := d.text(v, path, "a whole number")
		if !ok {
			return
		}
		n, err := strconv.Atoi(val)
		if err != nil {
			d.fail(deref(v).Line, path, "expected a whole number, got %s", shown(raw, val))
			return
		}
		*dst = n
	}
}

func (d *decoder) number(dst *float64) handler {
	return func(v *yaml.Node, path string) {
		raw, val, ok := d.text(v, path, "a number")
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail(deref(v).Line, path, "expected a number, got %s", shown(raw, val))
			return
		}
		*dst = f
	}
}

func (d *decoder) boolean(dst *bool) handler {
	return func(v *yaml.Node, path string) {
		raw, val, ok := d.text(v, path, "true or false")
		if !ok {
			return
		}
		switch val {
		case "true", "True", "TRUE":
			*dst = true
		case "false", "False", "FALSE":
			*dst = false
		default:
			d.fail(deref(v).Line, path, "expected true or false, got %s", shown(raw, val))
		}
	}
}

// parseSize reads a byte count: a whole number with an optional unit, decimal
// (KB, MB, GB, TB) or binary (KiB, MiB, GiB, TiB), in any case.
func parseSize(s string) (int64, error) {
	digits := 0
	for digits < len(s) && s[digits] >= '0' && s[digits] <= '9' {
		digits++
	}
	const want = "expected a size in bytes such as 1048576, 512KiB, 64MiB or 10MB"
	if digits == 0 {
		return 0, errors.New(want)
	}
	var unit int64
	switch strings.ToLower(strings.TrimSpace(s[digits:])) {
	case "", "b":
		unit = 1
	case "kb":
		unit = 1e3
	case "mb":
		unit = 1e6
	case "gb":
		unit = 1e9
	case "tb":
		unit = 1e12
	case "kib":
		unit = 1 << 10
	case "mib":
		unit = 1 << 20
	case "gib":
		unit = 1 << 30
	case "tib":
		unit = 1 << 40
	default:
		return 0, errors.New(want)
	}
	n, err := strconv.ParseInt(s[:digits], 10, 64)
	if err != nil || n > math.MaxInt64/unit {
		return 0, errors.New("expected a size below 8EiB")
	}
	return n * unit, nil
}

func (d *decoder) config(root *yaml.Node, c *Config) {
	d.fields(root, "", map[string]handler{
		"source": func(v *yaml.Node, p string) {
			s := &c.Source
			d.fields(v, p, map[string]handler{
				"dsn":             d.str(&s.DSN),
				"slot":            d.str(&s.Slot),
				"publication":     d.str(&s.Publication),
				"status_interval": d.duration(&s.StatusInterval),
				"heartbeat":       d.duration(&s.Heartbeat),
			})
		},
		"state": func(v *yaml.Node, p string) {
			d.fields(v, p, map[string]handler{
				"dir":                    d.str(&c.State.Dir),
				"dead_letters_max_bytes": d.size(&c.State.DeadLettersMaxBytes),
				"store":                  enum(d, &c.State.Store, StoreFiles, StorePostgres),
				"table":                  d.str(&c.State.Table),
			})
		},
		"pipeline": func(v *yaml.Node, p string) {
			pl := &c.Pipeline
			d.fields(v, p, map[string]handler{
				"max_in_flight_bytes": d.size(&pl.MaxInFlightBytes),
				"flush_interval":      d.duration(&pl.FlushInterval),
				"batch_rows":          d.integer(&pl.BatchRows),
				"batch_bytes":         d.size(&pl.BatchBytes),
				"snapshot_chunk_rows": d.integer(&pl.SnapshotChunkRows),
				"shutdown_timeout":    d.duration(&pl.ShutdownTimeout),
			})
		},
		"log": func(v *yaml.Node, p string) {
			d.fields(v, p, map[string]handler{
				"level":  enum(d, &c.Log.Level, "debug", "info", "warn", "error"),
				"format": enum(d, &c.Log.Format, "auto", "text", "json"),
			})
		},
		"http": func(v *yaml.Node, p string) {
			d.fields(v, p, map[string]handler{"listen": d.str(&c.HTTP.Listen)})
		},
		"targets": func(v *yaml.Node, p string) {
			d.entries(v, p, "a mapping of target names to targets", func(k, v *yaml.Node, p string) {
				c.Targets[k.Value] = d.target(k, v, p)
			})
		},
		"mappings": func(v *yaml.Node, p string) {
			v = deref(v)
			if isNull(v) {
				return
			}
			if v.Kind != yaml.SequenceNode {
				d.wrongKind(v, p, "a list of mappings")
				return
			}
			for i, item := range v.Content {
				ip := fmt.Sprintf("%s[%d]", p, i)
				d.lines[ip] = deref(item).Line
				c.Mappings = append(c.Mappings, d.mapping(item, ip))
			}
		},
	})
}

// target decodes a target into its type's own configuration. The type is
// read first, because the defaults and the keys allowed depend on it.
func (d *decoder) target(k, v *yaml.Node, path string) *Target {
	typ := ""
	if n := deref(v); n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "type" {
				// Reported, if wrong, when the key is decoded below.
				if val, err := expandEnv(deref(n.Content[i+1]).Value, d.env); err == nil {
					typ = val
				}
			}
		}
	}
	t := &Target{Name: k.Value, Line: k.Line}
	fc, gc := feishu.DefaultConfig(k.Value), gptbots.DefaultConfig(k.Value)
	feishuKeys, gptbotsKeys := d.settings(reflect.ValueOf(&fc).Elem()), d.settings(reflect.ValueOf(&gc).Elem())
	own, other, otherType := feishuKeys, gptbotsKeys, TypeGPTBots
	switch typ {
	case TypeFeishu:
		t.Feishu = &fc
	case TypeGPTBots:
		t.GPTBots = &gc
		own, other, otherType = gptbotsKeys, feishuKeys, TypeFeishu
	default:
		// With the type unknown, decode everything so that no other problem
		// goes unreported.
		own = maps.Clone(feishuKeys)
		for key, h := range gptbotsKeys {
			if _, ok := own[key]; !ok {
				own[key] = h
			}
		}
	}
	known := map[string]handler{"type": enum(d, &t.Type, TypeFeishu, TypeGPTBots)}
	maps.Copy(known, own)
	d.entries(v, path, "a mapping", func(k, v *yaml.Node, p string) {
		if h, ok := known[k.Value]; ok {
			h(v, p)
		} else if _, ok := other[k.Value]; ok {
			d.report(k.Line, p, "%s is an option of %s targets and this target is of type %s: remove it", k.Value, otherType, typ)
		} else {
			d.unknownKey(k, p, known)
		}
	})
	return t
}

func (d *decoder) mapping(v *yaml.Node, path string) *Mapping {
	m := newMapping(deref(v).Line)
	d.fields(v, path, map[string]handler{
		"source": func(v *yaml.Node, p string) {
			raw, val, ok := d.text(v, p, "a table name")
			if !ok {
				return
			}
			switch parts := strings.Split(val, "."); {
			case len(parts) == 1 && val != "":
				m.Source = "public." + val
			case len(parts) == 2 && parts[0] != "" && parts[1] != "":
				m.Source = val
			default:
				d.fail(deref(v).Line, p, "%s is not a table name: write schema.table, or table for public.table", shown(raw, val))
			}
		},
		"target": d.str(&m.Target),
		"table":  d.str(&m.Table),
		"key": func(v *yaml.Node, p string) {
			m.Key = d.names(v, p)
		},
		"columns": func(v *yaml.Node, p string) {
			if isNull(deref(v)) {
				return
			}
			m.ColumnsGiven = true
			d.entries(v, p, "a mapping of source columns to target columns", func(k, v *yaml.Node, p string) {
				m.Columns = append(m.Columns, d.column(k, v, p))
			})
		},
		"on_delete": func(v *yaml.Node, p string) {
			d.onDelete(v, p, &m.OnDelete)
		},
		"on_truncate":       enum(d, &m.OnTruncate, mapping.TruncateHalt, mapping.TruncateIgnore, mapping.TruncateEmpty),
		"on_reject":         enum(d, &m.OnReject, mapping.RejectDeadLetter, mapping.RejectHalt),
		"on_missing_column": enum(d, &m.OnMissingColumn, mapping.MissingHalt, mapping.MissingSkip),
		"snapshot":          d.boolean(&m.Snapshot),
		"where":             d.str(&m.Where),
	})
	return m
}

// names decodes a list of column names; a single name is a list of one.
func (d *decoder) names(v *yaml.Node, path string) []string {
	v = deref(v)
	switch {
	case isNull(v):
		return nil
	case v.Kind == yaml.ScalarNode:
		if _, val, ok := d.text(v, path, "a column name"); ok {
			return []string{val}
		}
		return nil
	case v.Kind != yaml.SequenceNode:
		d.wrongKind(v, path, "a list of column names")
		return nil
	}
	names := []string{}
	for i, item := range v.Content {
		ip := fmt.Sprintf("%s[%d]", path, i)
		d.lines[ip] = deref(item).Line
		if _, val, ok := d.text(item, ip, "a column name"); ok {
			names = append(names, val)
		} else if isNull(deref(item)) {
			names = append(names, "") // reported by validation
		}
	}
	return names
}

// column decodes one entry of columns: a new name, {name, format} or null to
// keep the name.
func (d *decoder) column(k, v *yaml.Node, path string) Column {
	col := Column{Source: k.Value, Name: k.Value, Line: k.Line}
	switch n := deref(v); {
	case isNull(n):
	case n.Kind == yaml.ScalarNode:
		d.str(&col.Name)(n, path)
	case n.Kind == yaml.MappingNode:
		d.fields(n, path, map[string]handler{
			"name":   d.str(&col.Name),
			"format": enum(d, &col.Format, mapping.FormatUnixMS, mapping.FormatUnixS, mapping.FormatString, mapping.FormatJSON),
		})
	default:
		d.wrongKind(n, path, "a target column name or {name: …, format: …}")
	}
	return col
}

func (d *decoder) onDelete(v *yaml.Node, path string, dst *OnDelete) {
	n := deref(v)
	switch {
	case isNull(n):
	case n.Kind == yaml.MappingNode:
		*dst = OnDelete{Mode: mapping.DeleteSoft}
		d.fields(n, path, map[string]handler{"soft": d.str(&dst.SoftColumn)})
	default:
		raw, val, ok := d.text(n, path, "delete, ignore or {soft: column}")
		switch {
		case !ok:
		case val == string(mapping.DeleteRow) || val == string(mapping.DeleteIgnore):
			*dst = OnDelete{Mode: mapping.DeleteMode(val)}
		case val == string(mapping.DeleteSoft):
			d.fail(n.Line, path, "a soft delete needs the target column to set to true: write {soft: column}")
		default:
			d.fail(n.Line, path, "unknown value %s: use delete, ignore or {soft: column}", shown(raw, val))
		}
	}
}
