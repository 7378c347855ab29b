package gptbots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/replicator-cdc/replicator"
)

const pagePath = "/v1/database/records/page"

// schema is what the writer knows of one target table after Prepare.
type schema struct {
	spec    replicator.TableSpec
	key     string
	keyType string
	types   map[string]string
	unique  map[string]bool
}

type fieldInfo struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Unique   bool   `json:"unique"`
	Required bool   `json:"required"`
}

// pageAnswer accepts both documented shapes of the page answer: the fields
// at the top level, or inside {"code":0,"message":"OK","data":…}.
type pageAnswer struct {
	TableInfo *struct {
		Fields []fieldInfo `json:"fields"`
	} `json:"table_info"`
	Data *pageAnswer `json:"data"`
}

// readSchema reads a table's fields with a one-record page and checks the
// mapping against them.
func (w *Writer) readSchema(ctx context.Context, spec replicator.TableSpec) (*schema, error) {
	where := fmt.Sprintf("gptbots target %q: table %s (from %s)", w.cfg.Name, spec.Table, spec.Source)
	if len(spec.Key) != 1 {
		return nil, fmt.Errorf("%s: the key has %d columns %v; GPTBots upserts by exactly one unique field, so map a single key column", where, len(spec.Key), spec.Key)
	}
	all, err := w.readFields(ctx, spec.Table, where)
	if err != nil {
		return nil, err
	}
	s := &schema{spec: spec, key: spec.Key[0], types: map[string]string{}, unique: map[string]bool{}}
	fields := map[string]fieldInfo{}
	for _, f := range all {
		f.Type = strings.ToUpper(f.Type)
		fields[f.Name] = f
	}
	for _, name := range mapped(spec) {
		f, ok := fields[name]
		if !ok {
			return nil, fmt.Errorf("%s: field %q does not exist in the table; add it in GPTBots or change the mapping", where, name)
		}
		switch f.Type {
		case typeText, typeInt, typeFloat, typeDateTime, typeBoolean:
		default:
			return nil, fmt.Errorf("%s: field %q has type %q, which the writer cannot encode for", where, name, f.Type)
		}
		s.types[name], s.unique[name] = f.Type, f.Unique
	}
	if !s.unique[s.key] {
		return nil, fmt.Errorf("%s: key field %q is not unique in GPTBots; mark it unique, since upserts and deletes filter on it", where, s.key)
	}
	s.keyType = s.types[s.key]
	for _, f := range all {
		if _, ok := s.types[f.Name]; f.Required && !ok {
			w.log.Warn("a required GPTBots field is not mapped; inserts may fail", "table", spec.Table, "field", f.Name)
		}
	}
	return s, nil
}

// mapped lists the spec's columns with the key first, each once.
func mapped(spec replicator.TableSpec) []string {
	out := slices.Clone(spec.Key)
	for _, c := range spec.Columns {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// TargetColumns reads a table's field names. GPTBots has no NOT NULL
// constraint an update could trip over, so no field is required.
func (w *Writer) TargetColumns(ctx context.Context, table string) (columns, required []string, err error) {
	fields, err := w.readFields(ctx, table, fmt.Sprintf("gptbots target %q: table %s", w.cfg.Name, table))
	if err != nil {
		return nil, nil, err
	}
	for _, f := range fields {
		columns = append(columns, f.Name)
	}
	return columns, nil, nil
}

// readFields reads a table's fields with a one-record page; where starts
// its error messages.
func (w *Writer) readFields(ctx context.Context, table, where string) ([]fieldInfo, error) {
	body, err := json.Marshal(map[string]any{"table_id": table, "page": 1, "page_size": 1})
	if err != nil {
		return nil, err
	}
	ans, err := w.send(ctx, call{op: "schema", table: table, path: pagePath, body: body})
	var invalid *invalidError
	if errors.As(err, &invalid) {
		return nil, fmt.Errorf("%s: reading the table's fields: %w", where, err)
	}
	if err != nil {
		return nil, err
	}
	var page pageAnswer
	if err := json.Unmarshal(ans, &page); err != nil {
		return nil, fmt.Errorf("%s: reading the table's fields: %w", where, err)
	}
	if page.TableInfo == nil && page.Data != nil {
		page = *page.Data
	}
	if page.TableInfo == nil {
		return nil, fmt.Errorf("%s: the page answer has no table_info; check base_url", where)
	}
	return page.TableInfo.Fields, nil
}
