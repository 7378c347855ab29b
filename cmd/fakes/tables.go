package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/replicator-cdc/replicator/targets/feishu/feishufake"
	"github.com/replicator-cdc/replicator/targets/gptbots/gptbotsfake"
)

// tablesFile is the -tables file. JSON is YAML too, so either works:
//
//	feishu:
//	  workspace_id: workspace_demo        # default workspace_fake
//	  tables:
//	    customers:                        # table name
//	      - {name: customer_id, type: bigint, unique: true, not_null: true}
//	      - {name: name, type: text}
//	gptbots:
//	  tables:
//	    "1890000000000000001":            # table id
//	      - {name: ticket_id, type: INT, unique: true}
//	      - {name: subject, type: TEXT}
type tablesFile struct {
	Feishu struct {
		WorkspaceID string                    `yaml:"workspace_id"`
		Tables      map[string][]feishuColumn `yaml:"tables"`
	} `yaml:"feishu"`
	GPTBots struct {
		Tables map[string][]gptbotsField `yaml:"tables"`
	} `yaml:"gptbots"`
}

// feishuColumn is a column of an aPaaS table, typed like a PostgreSQL
// column. Columns allow NULL unless not_null says otherwise, as in SQL.
// Every table has the system primary key _id; primary_key marks the table's
// natural key instead: one unique constraint over the columns so marked,
// shown as unique on a lone column and invisible when composite, as the real
// schema answer does.
type feishuColumn struct {
	Name       string `yaml:"name"`
	Type       string `yaml:"type"`
	PrimaryKey bool   `yaml:"primary_key"`
	Unique     bool   `yaml:"unique"`
	NotNull    bool   `yaml:"not_null"`
	Default    string `yaml:"default"`
}

// gptbotsField is a field of a GPTBots table: TEXT, INT, FLOAT, DATETIME or
// BOOLEAN.
type gptbotsField struct {
	Name     string `yaml:"name"`
	Type     string `yaml:"type"`
	Unique   bool   `yaml:"unique"`
	Required bool   `yaml:"required"`
}

// readTables decodes the file strictly, so that a misspelt key is an error
// rather than a column silently missing its constraint.
func readTables(path string) (*tablesFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f tablesFile
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(f.Feishu.Tables) == 0 && len(f.GPTBots.Tables) == 0 {
		return nil, fmt.Errorf("%s declares no tables: list some under feishu.tables or gptbots.tables", path)
	}
	return &f, nil
}

func (c feishuColumn) fake() feishufake.Column {
	return feishufake.Column{
		Name: c.Name, DataType: c.Type, IsPrimaryKey: c.PrimaryKey, IsUnique: c.Unique,
		AllowNull: !c.NotNull, Default: c.Default,
	}
}

func (f gptbotsField) fake() gptbotsfake.Field {
	return gptbotsfake.Field{Name: f.Name, Type: f.Type, Unique: f.Unique, Required: f.Required}
}
