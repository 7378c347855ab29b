package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/mapping"
	"github.com/replicator-cdc/replicator/targets/feishu"
	"github.com/replicator-cdc/replicator/targets/gptbots"
)

// Building blocks of a valid file; a test replaces the one it is about.
const (
	sourceOK = `source:
  dsn: postgres://u:hunter2@db:5432/app
`
	targetsOK = `targets:
  lark:
    type: feishu
    workspace_id: ws
    user_access_token: u-token
  bots:
    type: gptbots
    api_key: bots-key
`
	mappingsOK = `mappings:
  - source: customers
    target: lark
    table: customers
`
)

func parse(t *testing.T, text string, env map[string]string) (*Config, error) {
	t.Helper()
	return Parse("test.yaml", []byte(text), fakeEnv(env))
}

func mustParse(t *testing.T, text string, env map[string]string) *Config {
	t.Helper()
	cfg, err := parse(t, text, env)
	require.NoError(t, err)
	return cfg
}

// problems returns the messages of a failed Parse, one per problem.
func problems(t *testing.T, err error) []string {
	t.Helper()
	require.Error(t, err)
	return strings.Split(err.Error(), "\n")
}

func exampleEnv() map[string]string {
	return map[string]string{
		"PGPASSWORD":        "pg-secret",
		"FEISHU_APP_ID":     "cli_a1b2c3",
		"FEISHU_APP_SECRET": "app-secret",
		"GPTBOTS_API_KEY":   "bots-secret",
	}
}

func TestExampleParses(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "config.example.yaml"), fakeEnv(exampleEnv()))
	require.NoError(t, err)

	assert.Equal(t, "postgres://replicator:pg-secret@127.0.0.1:5432/app?sslmode=disable", cfg.Source.DSN)
	lark := cfg.Targets["lark"].Feishu
	require.NotNil(t, lark)
	assert.Equal(t, feishu.OAuth{AppID: "cli_a1b2c3", AppSecret: "app-secret"}, lark.OAuth)
	assert.Empty(t, lark.UserAccessToken, "the commented alternative is not read")
	assert.Equal(t, 16, lark.MaxConcurrentRequests)
	assert.Equal(t, "bots-secret", cfg.Targets["bots"].GPTBots.APIKey)

	require.Len(t, cfg.Mappings, 3)
	customers := cfg.Mappings[0]
	assert.Equal(t, []Column{
		{Source: "id", Name: "customer_id", Line: customers.Columns[0].Line},
		{Source: "full_name", Name: "name", Line: customers.Columns[1].Line},
		{Source: "email", Name: "email", Line: customers.Columns[2].Line},
		{Source: "created_at", Name: "created", Format: mapping.FormatUnixMS, Line: customers.Columns[3].Line},
	}, customers.Columns)
	orders := cfg.Mappings[1]
	assert.Equal(t, "public.orders", orders.Source)
	assert.Equal(t, OnDelete{Mode: mapping.DeleteSoft, SoftColumn: "deleted"}, orders.OnDelete)
	assert.False(t, orders.Snapshot)
	assert.Equal(t, customers.Source, cfg.Mappings[2].Source, "the example fans customers out")
}

func TestExampleNamesMissingVariables(t *testing.T) {
	_, err := Load(filepath.Join("..", "config.example.yaml"), fakeEnv(nil))
	msgs := problems(t, err)
	require.Len(t, msgs, 4, "one message per unset variable, and no other: %q", msgs)
	for i, name := range []string{"PGPASSWORD", "FEISHU_APP_ID", "FEISHU_APP_SECRET", "GPTBOTS_API_KEY"} {
		assert.Regexp(t, `^\.\./config\.example\.yaml:\d+: [a-z_.]+: environment variable `+name+` is not set`, msgs[i])
	}
}

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, sourceOK+targetsOK+mappingsOK, nil)
	lark := feishu.DefaultConfig("lark")
	lark.WorkspaceID, lark.UserAccessToken = "ws", "u-token"
	bots := gptbots.DefaultConfig("bots")
	bots.APIKey = "bots-key"
	want := &Config{
		Source: Source{
			DSN:            "postgres://u:hunter2@db:5432/app",
			Slot:           "replicator",
			Publication:    "replicator",
			StatusInterval: 10 * time.Second,
			Heartbeat:      30 * time.Second,
		},
		State: State{Dir: "./replicator-state", DeadLettersMaxBytes: 64 << 20, Store: StoreFiles, Table: "replicator.state"},
		Pipeline: Pipeline{
			MaxInFlightBytes:  64 << 20,
			FlushInterval:     time.Second,
			BatchRows:         0,
			BatchBytes:        4 << 20,
			SnapshotChunkRows: 5000,
			ShutdownTimeout:   30 * time.Second,
		},
		Log:  Log{Level: "info", Format: "auto"},
		HTTP: HTTP{Listen: "127.0.0.1:9188"},
		Targets: map[string]*Target{
			"lark": {Name: "lark", Type: TypeFeishu, Feishu: &lark, Line: 4},
			"bots": {Name: "bots", Type: TypeGPTBots, GPTBots: &bots, Line: 8},
		},
		Mappings: []*Mapping{{
			Source:          "public.customers",
			Target:          "lark",
			Table:           "customers",
			OnDelete:        OnDelete{Mode: mapping.DeleteRow},
			OnTruncate:      mapping.TruncateHalt,
			OnReject:        mapping.RejectDeadLetter,
			OnMissingColumn: mapping.MissingHalt,
			Snapshot:        true,
			Line:            12,
		}},
	}
	assert.Equal(t, want, cfg)
	assert.Equal(t, "https://open.feishu.cn", lark.BaseURL, "the target package's defaults")
	assert.Equal(t, 16, bots.MaxConcurrentRequests)
	assert.Nil(t, cfg.Mappings[0].Key, "no key means the primary key")
}

func TestNullKeepsDefault(t *testing.T) {
	cfg := mustParse(t, sourceOK+"  slot:\npipeline:\n  flush_interval: ~\nlog:\n"+targetsOK+mappingsOK, nil)
	assert.Equal(t, "replicator", cfg.Source.Slot)
	assert.Equal(t, time.Second, cfg.Pipeline.FlushInterval)
	assert.Equal(t, "info", cfg.Log.Level)
}

func TestSettingsOverrideDefaults(t *testing.T) {
	cfg := mustParse(t, `source:
  dsn: host=db user=u dbname=app
  slot: my_slot_2
  publication: pub
  status_interval: 5s
  heartbeat: 1m
state:
  dir: /var/lib/replicator
  dead_letters_max_bytes: 1MiB
pipeline:
  max_in_flight_bytes: 1GiB
  flush_interval: 250ms
  batch_rows: 100
  batch_bytes: 10MB
  snapshot_chunk_rows: 1000
  shutdown_timeout: 1m30s
log:
  level: debug
  format: json
http:
  listen: :9000
targets:
  lark:
    type: feishu
    base_url: https://open.larksuite.com/
    requests_per_second: 2.5
    request_timeout: 5s
    workspace_id: ws
    oauth: {app_id: id, app_secret: s, refresh_token: r}
    authorize_url: https://accounts.larksuite.com
    max_filter_length: 2000
    max_concurrent_requests: 4
  bots:
    type: gptbots
    base_url: https://api-jp.gptbots.ai
    api_key: k
    timezone: Asia/Tokyo
    max_concurrent_requests: 64
mappings:
  - source: sales.orders
    target: bots
    table: "123"
    key: order_no
    columns: {order_no: order_no}
    on_delete: ignore
    on_truncate: ignore
    on_reject: halt
    on_missing_column: skip
    snapshot: false
`, nil)
	assert.Equal(t, Source{DSN: "host=db user=u dbname=app", Slot: "my_slot_2", Publication: "pub",
		StatusInterval: 5 * time.Second, Heartbeat: time.Minute}, cfg.Source)
	assert.Equal(t, State{Dir: "/var/lib/replicator", DeadLettersMaxBytes: 1 << 20, Store: StoreFiles, Table: "replicator.state"}, cfg.State)
	assert.Equal(t, Pipeline{MaxInFlightBytes: 1 << 30, FlushInterval: 250 * time.Millisecond, BatchRows: 100,
		BatchBytes: 10_000_000, SnapshotChunkRows: 1000, ShutdownTimeout: 90 * time.Second}, cfg.Pipeline)
	assert.Equal(t, Log{Level: "debug", Format: "json"}, cfg.Log)
	assert.Equal(t, ":9000", cfg.HTTP.Listen)

	lark := cfg.Targets["lark"].Feishu
	assert.Equal(t, "https://open.larksuite.com", lark.BaseURL, "trailing slash dropped")
	assert.Equal(t, 2.5, lark.RequestsPerSecond)
	assert.Equal(t, 5*time.Second, lark.RequestTimeout)
	assert.Equal(t, feishu.OAuth{AppID: "id", AppSecret: "s", RefreshToken: "r"}, lark.OAuth)
	assert.Equal(t, "https://accounts.larksuite.com", lark.AuthorizeURL)
	assert.Equal(t, 2000, lark.MaxFilterLength)
	assert.Equal(t, 4, lark.MaxConcurrentRequests)
	bots := cfg.Targets["bots"].GPTBots
	assert.Equal(t, "https://api-jp.gptbots.ai", bots.BaseURL)
	assert.Equal(t, "Asia/Tokyo", bots.Timezone)
	assert.Equal(t, 64, bots.MaxConcurrentRequests)

	m := cfg.Mappings[0]
	assert.Equal(t, "sales.orders", m.Source)
	assert.Equal(t, "123", m.Table)
	assert.Equal(t, []string{"order_no"}, m.Key, "a single name is a key of one column")
	assert.Equal(t, OnDelete{Mode: mapping.DeleteIgnore}, m.OnDelete)
	assert.Equal(t, mapping.TruncateIgnore, m.OnTruncate)
	assert.Equal(t, mapping.RejectHalt, m.OnReject)
	assert.Equal(t, mapping.MissingSkip, m.OnMissingColumn)
	assert.False(t, m.Snapshot)
}

func TestEnvExpansion(t *testing.T) {
	tests := []struct {
		name string
		text string
		env  map[string]string
		want func(*testing.T, *Config)
		err  string
	}{
		{
			name: "set",
			text: "source:\n  dsn: postgres://u:${PW}@db/app\n" + targetsOK + mappingsOK,
			env:  map[string]string{"PW": "pw"},
			want: func(t *testing.T, c *Config) { assert.Equal(t, "postgres://u:pw@db/app", c.Source.DSN) },
		},
		{
			name: "unset",
			text: "source:\n  dsn: postgres://u:${PW}@db/app\n" + targetsOK + mappingsOK,
			err:  "test.yaml:2: source.dsn: environment variable PW is not set: set it, or write ${PW:-default}",
		},
		{
			name: "default",
			text: sourceOK + "  slot: ${SLOT:-fallback_slot}\n" + targetsOK + mappingsOK,
			want: func(t *testing.T, c *Config) { assert.Equal(t, "fallback_slot", c.Source.Slot) },
		},
		{
			name: "escaped dollar",
			text: "source:\n  dsn: postgres://u:pa$$word@db/app\n" + targetsOK + mappingsOK,
			want: func(t *testing.T, c *Config) { assert.Equal(t, "postgres://u:pa$word@db/app", c.Source.DSN) },
		},
		{
			name: "lone dollar",
			text: "source:\n  dsn: postgres://u:pa$word@db/app\n" + targetsOK + mappingsOK,
			err:  "test.yaml:2: source.dsn: a lone $: write $$ for a dollar sign, or ${VAR} for an environment variable",
		},
		{
			name: "typed values",
			text: sourceOK + "pipeline:\n  batch_rows: ${ROWS}\n  flush_interval: ${FLUSH}\n" + targetsOK + mappingsOK +
				"    snapshot: ${SNAP}\n",
			env: map[string]string{"ROWS": "42", "FLUSH": "2s", "SNAP": "false"},
			want: func(t *testing.T, c *Config) {
				assert.Equal(t, 42, c.Pipeline.BatchRows)
				assert.Equal(t, 2*time.Second, c.Pipeline.FlushInterval)
				assert.False(t, c.Mappings[0].Snapshot)
			},
		},
		{
			name: "flow mapping",
			text: sourceOK + `targets:
  lark:
    type: feishu
    workspace_id: ws
    oauth: {app_id: ${APP_ID}, app_secret: ${APP_SECRET}, refresh_token: ${RT:-}}
` + mappingsOK,
			env: map[string]string{"APP_ID": "id", "APP_SECRET": "s"},
			want: func(t *testing.T, c *Config) {
				assert.Equal(t, feishu.OAuth{AppID: "id", AppSecret: "s"}, c.Targets["lark"].Feishu.OAuth)
			},
		},
		{
			name: "value is never YAML",
			text: sourceOK + strings.Replace(targetsOK, "api_key: bots-key", "api_key: ${KEY}", 1) + mappingsOK,
			env:  map[string]string{"KEY": `a: b # c, "d' {e} [f] *g &h`},
			want: func(t *testing.T, c *Config) {
				assert.Equal(t, `a: b # c, "d' {e} [f] *g &h`, c.Targets["bots"].GPTBots.APIKey)
			},
		},
		{
			name: "comments are not expanded",
			text: sourceOK + "  # slot: ${UNSET_IN_COMMENT}\n" + targetsOK + mappingsOK,
		},
		{
			name: "keys of unknown fields are not expanded",
			text: sourceOK + "  typo: ${UNSET}\n" + targetsOK + mappingsOK,
			err:  `test.yaml:3: source.typo: unknown key "typo"; known keys: dsn, heartbeat, publication, slot, status_interval`,
		},
		{
			name: "line inside a block scalar",
			text: "source:\n  dsn: |\n    host=db\n    password=${PW}\n" + targetsOK + mappingsOK,
			err:  "test.yaml:4: source.dsn: environment variable PW is not set",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse(t, tt.text, tt.env)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			if tt.want != nil {
				tt.want(t, cfg)
			}
		})
	}
}

func TestUnknownKeys(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{
			name: "top level",
			text: sourceOK + "sate:\n  dir: x\n" + targetsOK + mappingsOK,
			want: `test.yaml:3: sate: unknown key "sate"; did you mean "state"?`,
		},
		{
			name: "source",
			text: sourceOK + "  slto: x\n" + targetsOK + mappingsOK,
			want: `test.yaml:3: source.slto: unknown key "slto"; did you mean "slot"?`,
		},
		{
			name: "target",
			text: sourceOK + targetsOK + "    rate: 3\n" + mappingsOK,
			want: `test.yaml:11: targets.bots.rate: unknown key "rate"; known keys: api_key, base_url, max_concurrent_requests, request_timeout, requests_per_second, timezone, type`,
		},
		{
			name: "oauth",
			text: sourceOK + "targets:\n  lark:\n    type: feishu\n    workspace_id: ws\n    oauth:\n      app_id: a\n      app_secret: s\n      secret: x\n" + mappingsOK,
			want: `test.yaml:10: targets.lark.oauth.secret: unknown key "secret"; known keys: app_id, app_secret, refresh_token`,
		},
		{
			name: "mapping",
			text: sourceOK + targetsOK + mappingsOK + "    on_delte: ignore\n",
			want: `test.yaml:15: mappings[0].on_delte: unknown key "on_delte"; did you mean "on_delete"?`,
		},
		{
			name: "column",
			text: sourceOK + targetsOK + mappingsOK + "    columns:\n      ts: {nme: t}\n",
			want: `test.yaml:16: mappings[0].columns.ts.nme: unknown key "nme"; did you mean "name"?`,
		},
		{
			name: "on_delete",
			text: sourceOK + targetsOK + mappingsOK + "    on_delete: {sfot: gone}\n",
			want: `test.yaml:15: mappings[0].on_delete.sfot: unknown key "sfot"; did you mean "soft"?` +
				"\ntest.yaml:15: mappings[0].on_delete.soft: is required: name the target column a delete sets to true",
		},
		{
			name: "repeated key",
			text: sourceOK + "  slot: a\n  slot: b\n" + targetsOK + mappingsOK,
			want: `test.yaml:4: source.slot: repeated key, already set at line 3: keep one`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.text, nil)
			assert.Equal(t, strings.Split(tt.want, "\n"), problems(t, err))
		})
	}
}

func TestWrongTypes(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{
			name: "section is a list",
			text: "source: [a]\n" + targetsOK + mappingsOK,
			want: "test.yaml:1: source: expected a mapping, got a list",
		},
		{
			name: "top level is a list",
			text: "- a\n",
			want: "test.yaml:1: expected a mapping, got a list",
		},
		{
			name: "text is a mapping",
			text: "source:\n  dsn: {a: b}\n" + targetsOK + mappingsOK,
			want: "test.yaml:2: source.dsn: expected text, got a mapping",
		},
		{
			name: "whole number",
			text: sourceOK + "pipeline:\n  batch_rows: many\n" + targetsOK + mappingsOK,
			want: `test.yaml:4: pipeline.batch_rows: expected a whole number, got "many"`,
		},
		{
			name: "duration without unit",
			text: sourceOK + "  heartbeat: 30\n" + targetsOK + mappingsOK,
			want: `test.yaml:3: source.heartbeat: expected a duration such as 10s, 500ms or 1m30s, got "30"`,
		},
		{
			name: "size",
			text: sourceOK + "pipeline:\n  batch_bytes: 4 megs\n" + targetsOK + mappingsOK,
			want: `test.yaml:4: pipeline.batch_bytes: expected a size in bytes such as 1048576, 512KiB, 64MiB or 10MB, got "4 megs"`,
		},
		{
			name: "number",
			text: sourceOK + "targets:\n  bots:\n    type: gptbots\n    api_key: k\n    requests_per_second: fast\n" + "mappings:\n  - {source: c, target: bots, table: t}\n",
			want: `test.yaml:7: targets.bots.requests_per_second: expected a number, got "fast"`,
		},
		{
			name: "boolean",
			text: sourceOK + targetsOK + mappingsOK + "    snapshot: maybe\n",
			want: `test.yaml:15: mappings[0].snapshot: expected true or false, got "maybe"`,
		},
		{
			name: "enum",
			text: sourceOK + "log:\n  level: verbose\n" + targetsOK + mappingsOK,
			want: `test.yaml:4: log.level: unknown value "verbose": use one of debug, info, warn, error`,
		},
		{
			name: "targets is a list",
			text: sourceOK + "targets: [lark]\n" + mappingsOK,
			want: "test.yaml:3: targets: expected a mapping of target names to targets, got a list",
		},
		{
			name: "mappings is a mapping",
			text: sourceOK + targetsOK + "mappings: {source: x}\n",
			want: "test.yaml:11: mappings: expected a list of mappings, got a mapping",
		},
		{
			name: "key is a mapping",
			text: sourceOK + targetsOK + mappingsOK + "    key: {id: 1}\n",
			want: "test.yaml:15: mappings[0].key: expected a list of column names, got a mapping",
		},
		{
			name: "columns is a list",
			text: sourceOK + targetsOK + mappingsOK + "    columns: [id, name]\n",
			want: "test.yaml:15: mappings[0].columns: expected a mapping of source columns to target columns, got a list",
		},
		{
			name: "column is a list",
			text: sourceOK + targetsOK + mappingsOK + "    columns:\n      id: [a]\n",
			want: "test.yaml:16: mappings[0].columns.id: expected a target column name or {name: …, format: …}, got a list",
		},
		{
			name: "target type",
			text: sourceOK + "targets:\n  lark:\n    type: notion\n" + mappingsOK,
			want: `test.yaml:5: targets.lark.type: unknown value "notion": use one of feishu, gptbots`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.text, nil)
			assert.Equal(t, []string{tt.want}, problems(t, err))
		})
	}
}

func TestSyntaxErrors(t *testing.T) {
	_, err := parse(t, "source:\n  dsn: x\n   slot: y\n", nil)
	require.Error(t, err)
	assert.Regexp(t, `^test\.yaml:3: `, err.Error())

	_, err = parse(t, sourceOK+targetsOK+mappingsOK+"---\nsource: {}\n", nil)
	assert.Equal(t, []string{"test.yaml:15: a second YAML document starts here; keep the whole configuration in one document"}, problems(t, err))
}

func TestEmptyFile(t *testing.T) {
	_, err := parse(t, "", nil)
	assert.Equal(t, []string{
		"test.yaml: source.dsn: is required: the source database, such as postgres://replicator:${PGPASSWORD}@127.0.0.1:5432/app",
		"test.yaml: targets: none defined: define at least one target of type feishu or gptbots",
		"test.yaml: mappings: none defined: list at least one mapping from a source table to a target table",
	}, problems(t, err))
}

func TestAnchorsAndAliases(t *testing.T) {
	cfg := mustParse(t, sourceOK+targetsOK+`mappings:
  - source: a
    target: lark
    table: a
    columns: &cols
      id: ident
  - source: b
    target: lark
    table: b
    columns: *cols
`, nil)
	assert.Equal(t, cfg.Mappings[0].Columns, cfg.Mappings[1].Columns)
}

func TestValidation(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{
			name: "dsn required",
			text: "source:\n  slot: s\n" + targetsOK + mappingsOK,
			want: "test.yaml:1: source.dsn: is required",
		},
		{
			name: "dsn shape",
			text: "source:\n  dsn: just-a-host\n" + targetsOK + mappingsOK,
			want: "test.yaml:2: source.dsn: is neither a postgres:// URL nor key=value settings",
		},
		{
			name: "dsn scheme",
			text: "source:\n  dsn: mysql://u:pw@h/db\n" + targetsOK + mappingsOK,
			want: "test.yaml:2: source.dsn: is not a PostgreSQL URL: start it with postgres://",
		},
		{
			name: "slot name",
			text: sourceOK + "  slot: My-Slot\n" + targetsOK + mappingsOK,
			want: `test.yaml:3: source.slot: "My-Slot" is not a replication slot name: use 1 to 63 lower-case letters, digits and _`,
		},
		{
			name: "slot too long",
			text: sourceOK + "  slot: " + strings.Repeat("a", 64) + "\n" + targetsOK + mappingsOK,
			want: "test.yaml:3: source.slot:",
		},
		{
			name: "publication empty",
			text: sourceOK + "  publication: ''\n" + targetsOK + mappingsOK,
			want: "test.yaml:3: source.publication: is empty",
		},
		{
			name: "status interval too long",
			text: sourceOK + "  status_interval: 45s\n" + targetsOK + mappingsOK,
			want: "test.yaml:3: source.status_interval: is 45s: use at most 30s",
		},
		{
			name: "duration not positive",
			text: sourceOK + "  heartbeat: 0s\n" + targetsOK + mappingsOK,
			want: "test.yaml:3: source.heartbeat: is 0s: use a duration above zero, such as 10s",
		},
		{
			name: "negative duration",
			text: sourceOK + "pipeline:\n  shutdown_timeout: -1s\n" + targetsOK + mappingsOK,
			want: "test.yaml:4: pipeline.shutdown_timeout: is -1s: use a duration above zero",
		},
		{
			name: "state dir empty",
			text: sourceOK + "state:\n  dir: ''\n" + targetsOK + mappingsOK,
			want: "test.yaml:4: state.dir: is empty",
		},
		{
			name: "dead letters cap too small",
			text: sourceOK + "state:\n  dead_letters_max_bytes: 1KiB\n" + targetsOK + mappingsOK,
			want: "test.yaml:4: state.dead_letters_max_bytes: is 1024 bytes: use at least 64KiB",
		},
		{
			name: "in-flight zero",
			text: sourceOK + "pipeline:\n  max_in_flight_bytes: 0\n" + targetsOK + mappingsOK,
			want: "test.yaml:4: pipeline.max_in_flight_bytes: must be more than 0",
		},
		{
			name: "batch larger than in-flight",
			text: sourceOK + "pipeline:\n  max_in_flight_bytes: 1MiB\n  batch_bytes: 2MiB\n" + targetsOK + mappingsOK,
			want: "test.yaml:5: pipeline.batch_bytes: is 2097152 bytes, more than max_in_flight_bytes (1048576)",
		},
		{
			name: "batch rows negative",
			text: sourceOK + "pipeline:\n  batch_rows: -1\n" + targetsOK + mappingsOK,
			want: "test.yaml:4: pipeline.batch_rows: is -1: use 0 for the most each target accepts",
		},
		{
			name: "snapshot chunk zero",
			text: sourceOK + "pipeline:\n  snapshot_chunk_rows: 0\n" + targetsOK + mappingsOK,
			want: "test.yaml:4: pipeline.snapshot_chunk_rows: is 0: use a positive number",
		},
		{
			name: "listen without port",
			text: sourceOK + "http:\n  listen: localhost\n" + targetsOK + mappingsOK,
			want: `test.yaml:4: http.listen: "localhost" is not host:port`,
		},
		{
			name: "listen with bad port",
			text: sourceOK + "http:\n  listen: localhost:99999\n" + targetsOK + mappingsOK,
			want: `test.yaml:4: http.listen: "localhost:99999" has no valid port`,
		},
		{
			name: "target name",
			text: sourceOK + "targets:\n  lark/1:\n    type: gptbots\n    api_key: k\nmappings:\n  - {source: c, target: lark/1, table: t}\n",
			want: `test.yaml:4: targets.lark/1: "lark/1" is not a usable target name`,
		},
		{
			name: "target type required",
			text: sourceOK + "targets:\n  lark:\n    workspace_id: ws\n" + mappingsOK,
			want: "test.yaml:4: targets.lark.type: is required: use feishu or gptbots",
		},
		{
			name: "requests per second",
			text: sourceOK + targetsOK + "    requests_per_second: 0\n" + mappingsOK,
			want: "test.yaml:11: targets.bots.requests_per_second: is 0: use a number above zero",
		},
		{
			name: "request timeout",
			text: sourceOK + targetsOK + "    request_timeout: 0s\n" + mappingsOK,
			want: "test.yaml:11: targets.bots.request_timeout: is 0s",
		},
		{
			name: "base url",
			text: sourceOK + targetsOK + "    base_url: api-sg.gptbots.ai\n" + mappingsOK,
			want: `test.yaml:11: targets.bots.base_url: "api-sg.gptbots.ai" is not an http or https URL`,
		},
		{
			name: "feishu workspace",
			text: sourceOK + "targets:\n  lark:\n    type: feishu\n    user_access_token: t\n" + mappingsOK,
			want: "test.yaml:4: targets.lark.workspace_id: is required for a feishu target",
		},
		{
			name: "feishu without credentials",
			text: sourceOK + "targets:\n  lark:\n    type: feishu\n    workspace_id: ws\n" + mappingsOK,
			want: "test.yaml:4: targets.lark: needs credentials: set oauth {app_id, app_secret, refresh_token}, or user_access_token",
		},
		{
			name: "feishu with both credentials",
			text: sourceOK + targetsOK + "    oauth: {app_id: a, app_secret: s}\n" + mappingsOK,
			want: "test.yaml:11: targets.bots.oauth: oauth is an option of feishu targets",
		},
		{
			name: "feishu token and oauth",
			text: sourceOK + "targets:\n  lark:\n    type: feishu\n    workspace_id: ws\n    user_access_token: t\n    oauth: {app_id: a, app_secret: s}\n" + mappingsOK,
			want: "test.yaml:4: targets.lark: sets both user_access_token and oauth: keep one",
		},
		{
			name: "oauth app",
			text: sourceOK + "targets:\n  lark:\n    type: feishu\n    workspace_id: ws\n    oauth: {app_secret: s, refresh_token: r}\n" + mappingsOK,
			want: "test.yaml:7: targets.lark.oauth.app_id: is required",
		},
		{
			name: "authorize url",
			text: sourceOK + "targets:\n  lark:\n    type: feishu\n    workspace_id: ws\n    user_access_token: t\n    authorize_url: ftp://x\n" + mappingsOK,
			want: `test.yaml:8: targets.lark.authorize_url: "ftp://x" is not an http or https URL`,
		},
		{
			name: "max filter length",
			text: sourceOK + "targets:\n  lark:\n    type: feishu\n    workspace_id: ws\n    user_access_token: t\n    max_filter_length: 0\n" + mappingsOK,
			want: "test.yaml:8: targets.lark.max_filter_length: is 0",
		},
		{
			name: "gptbots api key",
			text: sourceOK + "targets:\n  bots:\n    type: gptbots\nmappings:\n  - {source: c, target: bots, table: t}\n",
			want: "test.yaml:4: targets.bots.api_key: is required for a gptbots target",
		},
		{
			name: "gptbots timezone",
			text: sourceOK + targetsOK + "    timezone: Mars/Olympus\n" + mappingsOK,
			want: `test.yaml:11: targets.bots.timezone: "Mars/Olympus" is not a known time zone`,
		},
		{
			name: "api key on feishu",
			text: sourceOK + "targets:\n  lark:\n    type: feishu\n    workspace_id: ws\n    user_access_token: t\n    api_key: k\n" + mappingsOK,
			want: "test.yaml:8: targets.lark.api_key: api_key is an option of gptbots targets and this target is of type feishu: remove it",
		},
		{
			name: "workspace on gptbots",
			text: sourceOK + "targets:\n  bots:\n    workspace_id: ws\n    type: gptbots\n    api_key: k\nmappings:\n  - {source: c, target: bots, table: t}\n",
			want: "test.yaml:5: targets.bots.workspace_id: workspace_id is an option of feishu targets and this target is of type gptbots: remove it",
		},
		{
			name: "no mappings",
			text: sourceOK + targetsOK + "mappings: []\n",
			want: "test.yaml:11: mappings: none defined",
		},
		{
			name: "mapping source required",
			text: sourceOK + targetsOK + "mappings:\n  - {target: lark, table: t}\n",
			want: "test.yaml:12: mappings[0].source: is required",
		},
		{
			name: "mapping source shape",
			text: sourceOK + targetsOK + "mappings:\n  - {source: a.b.c, target: lark, table: t}\n",
			want: `test.yaml:12: mappings[0].source: "a.b.c" is not a table name: write schema.table, or table for public.table`,
		},
		{
			name: "unknown target",
			text: sourceOK + targetsOK + "mappings:\n  - {source: c, target: lrak, table: t}\n",
			want: `test.yaml:12: mappings[0].target: "lrak" is not a target: define it under targets, or use one of bots, lark`,
		},
		{
			name: "target required",
			text: sourceOK + targetsOK + "mappings:\n  - {source: c, table: t}\n",
			want: "test.yaml:12: mappings[0].target: is required: name one of the targets (bots, lark)",
		},
		{
			name: "table required",
			text: sourceOK + targetsOK + "mappings:\n  - {source: c, target: lark}\n",
			want: "test.yaml:12: mappings[0].table: is required",
		},
		{
			name: "fan-out with different row filters",
			text: sourceOK + targetsOK + "mappings:\n  - {source: c, target: lark, table: a, where: x}\n  - {source: public.c, target: bots, table: b, where: y}\n",
			want: "test.yaml:13: mappings[1].where: differs from the where: of mappings[0] at line 12, which maps the same source table: the publication holds one row filter per table, so give every mapping of \"public.c\" the same where:",
		},
		{
			name: "duplicate target table",
			text: sourceOK + targetsOK + "mappings:\n  - {source: a, target: lark, table: t}\n  - {source: b, target: lark, table: t}\n",
			want: "test.yaml:13: mappings[1].table: target \"lark\" table \"t\" is already written by mappings[0] at line 12",
		},
		{
			name: "key not in columns",
			text: sourceOK + targetsOK + mappingsOK + "    key: [id]\n    columns:\n      name: n\n",
			want: `test.yaml:15: mappings[0].key[0]: "id" is not in columns: add it to columns, since the key must be written`,
		},
		{
			name: "key empty",
			text: sourceOK + targetsOK + mappingsOK + "    key: []\n",
			want: "test.yaml:15: mappings[0].key: is empty: list the conflict key's columns, or leave key out to use the primary key",
		},
		{
			name: "key column twice",
			text: sourceOK + targetsOK + mappingsOK + "    key: [id, id]\n",
			want: `test.yaml:15: mappings[0].key[1]: "id" is listed twice`,
		},
		{
			name: "gptbots composite key",
			text: sourceOK + targetsOK + "mappings:\n  - source: c\n    target: bots\n    table: t\n    key: [a, b]\n",
			want: "test.yaml:15: mappings[0].key: has 2 columns, but a gptbots table matches rows on one unique field: use a single column",
		},
		{
			name: "two columns to one name",
			text: sourceOK + targetsOK + mappingsOK + "    columns:\n      a: x\n      b: x\n",
			want: `test.yaml:17: mappings[0].columns.b: writes target column "x", which a already writes: give each source column its own target column`,
		},
		{
			name: "column renamed onto a kept name",
			text: sourceOK + targetsOK + mappingsOK + "    columns:\n      a:\n      b: a\n",
			want: `test.yaml:17: mappings[0].columns.b: writes target column "a", which a already writes`,
		},
		{
			name: "columns empty",
			text: sourceOK + targetsOK + mappingsOK + "    columns: {}\n",
			want: "test.yaml:15: mappings[0].columns: is empty: list the columns to copy, or leave columns out to copy every column",
		},
		{
			name: "column name empty",
			text: sourceOK + targetsOK + mappingsOK + "    columns:\n      a: ''\n",
			want: `test.yaml:16: mappings[0].columns.a: has an empty target name`,
		},
		{
			name: "format",
			text: sourceOK + targetsOK + mappingsOK + "    columns:\n      ts: {format: unix_ns}\n",
			want: `test.yaml:16: mappings[0].columns.ts.format: unknown value "unix_ns": use one of unix_ms, unix_s, string, json`,
		},
		{
			name: "soft column is a key column",
			text: sourceOK + targetsOK + mappingsOK + "    key: [id]\n    on_delete: {soft: id}\n",
			want: `test.yaml:16: mappings[0].on_delete.soft: "id" is a key column: a soft delete must set a column outside the key`,
		},
		{
			name: "soft column is a renamed key column",
			text: sourceOK + targetsOK + mappingsOK + "    key: [id]\n    columns:\n      id: ident\n    on_delete: {soft: ident}\n",
			want: `test.yaml:18: mappings[0].on_delete.soft: "ident" is a key column`,
		},
		{
			name: "soft column empty",
			text: sourceOK + targetsOK + mappingsOK + "    on_delete: {soft: ''}\n",
			want: "test.yaml:15: mappings[0].on_delete.soft: is required: name the target column a delete sets to true",
		},
		{
			name: "soft without column",
			text: sourceOK + targetsOK + mappingsOK + "    on_delete: soft\n",
			want: "test.yaml:15: mappings[0].on_delete: a soft delete needs the target column to set to true: write {soft: column}",
		},
		{
			name: "on_delete value",
			text: sourceOK + targetsOK + mappingsOK + "    on_delete: remove\n",
			want: `test.yaml:15: mappings[0].on_delete: unknown value "remove": use delete, ignore or {soft: column}`,
		},
		{
			name: "on_truncate value",
			text: sourceOK + targetsOK + mappingsOK + "    on_truncate: delete\n",
			want: `test.yaml:15: mappings[0].on_truncate: unknown value "delete": use one of halt, ignore`,
		},
		{
			name: "on_reject value",
			text: sourceOK + targetsOK + mappingsOK + "    on_reject: skip\n",
			want: `test.yaml:15: mappings[0].on_reject: unknown value "skip": use one of dead_letter, halt`,
		},
		{
			name: "on_missing_column value",
			text: sourceOK + targetsOK + mappingsOK + "    on_missing_column: ignore\n",
			want: `test.yaml:15: mappings[0].on_missing_column: unknown value "ignore": use one of halt, skip`,
		},
		{
			name: "on_missing_column without columns",
			text: sourceOK + targetsOK + mappingsOK + "    on_missing_column: skip\n",
			want: `test.yaml:15: mappings[0].on_missing_column: applies to listed columns, and this mapping lists none (it copies every column, leaving out those the target lacks): remove it, or list the columns`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.text, nil)
			msgs := problems(t, err)
			require.Len(t, msgs, 1, "want exactly one problem, got %q", msgs)
			assert.True(t, strings.HasPrefix(msgs[0], tt.want), "got  %s\nwant %s…", msgs[0], tt.want)
		})
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	_, err := parse(t, `source:
  dsn: postgres://u:${PW}@db/app
  slot: Bad
  status_interval: 1h
pipeline:
  batch_rows: lots
log:
  level: loud
targets:
  lark:
    type: feishu
    api_key: k
  bots:
    type: gptbots
    timezone: Nowhere/Land
mappings:
  - source: customers
    target: bots
    table: t
    key: [a, b]
    columns:
      a: x
      c: x
  - source: public.customers
    target: nowhere
    table: t
    on_delete: {soft: ''}
  - target: lark
    table: t
    colums: {}
`, nil)
	assert.Equal(t, []string{
		"test.yaml:2: source.dsn: environment variable PW is not set: set it, or write ${PW:-default}",
		`test.yaml:3: source.slot: "Bad" is not a replication slot name: use 1 to 63 lower-case letters, digits and _`,
		"test.yaml:4: source.status_interval: is 1h0m0s: use at most 30s, since PostgreSQL drops a connection that sends no status for wal_sender_timeout (60s by default)",
		`test.yaml:6: pipeline.batch_rows: expected a whole number, got "lots"`,
		`test.yaml:8: log.level: unknown value "loud": use one of debug, info, warn, error`,
		"test.yaml:10: targets.lark.workspace_id: is required for a feishu target: the aPaaS workspace, such as workspace_aadimx5uzpsls",
		"test.yaml:10: targets.lark: needs credentials: set oauth {app_id, app_secret, refresh_token}, or user_access_token",
		"test.yaml:12: targets.lark.api_key: api_key is an option of gptbots targets and this target is of type feishu: remove it",
		"test.yaml:13: targets.bots.api_key: is required for a gptbots target: set it, for example to ${GPTBOTS_API_KEY}",
		`test.yaml:15: targets.bots.timezone: "Nowhere/Land" is not a known time zone: use an IANA name such as UTC or Asia/Singapore`,
		"test.yaml:20: mappings[0].key: has 2 columns, but a gptbots table matches rows on one unique field: use a single column",
		`test.yaml:20: mappings[0].key[1]: "b" is not in columns: add it to columns, since the key must be written`,
		`test.yaml:23: mappings[0].columns.c: writes target column "x", which a already writes: give each source column its own target column`,
		`test.yaml:25: mappings[1].target: "nowhere" is not a target: define it under targets, or use one of bots, lark`,
		"test.yaml:27: mappings[1].on_delete.soft: is required: name the target column a delete sets to true",
		"test.yaml:28: mappings[2].source: is required: the source table, as schema.table",
		`test.yaml:30: mappings[2].colums: unknown key "colums"; did you mean "columns"?`,
	}, problems(t, err))
}

func TestSecretsNotInErrors(t *testing.T) {
	const secret = "hunter2"
	env := map[string]string{"SECRET": secret}
	tests := []struct {
		name, text string
	}{
		{"dsn that is not a URL", "source:\n  dsn: postgres://u:" + secret + "@db:5432/app%zz\n" + targetsOK + mappingsOK},
		{"dsn with a password from the environment", "source:\n  dsn: mysql://u:${SECRET}@db/app\n" + targetsOK + mappingsOK},
		{"dsn with a password parameter", "source:\n  dsn: mysql://db/app?sslmode=disable&password=" + secret + "\n" + targetsOK + mappingsOK},
		{"dsn keyword form", "source:\n  dsn: host=db password=" + secret + " dbname=app\n  slot: X\n" + targetsOK + mappingsOK},
		{"secret in a number", sourceOK + targetsOK + "    requests_per_second: ${SECRET}\n" + mappingsOK},
		{"secret in a duration", sourceOK + targetsOK + "    request_timeout: ${SECRET}\n" + mappingsOK},
		{"secret in an enum", sourceOK + "log:\n  level: ${SECRET}\n" + targetsOK + mappingsOK},
		{"secret in a table name", sourceOK + targetsOK + "mappings:\n  - {source: '${SECRET}.a.b', target: lark, table: t}\n"},
		{"secret in a time zone", sourceOK + targetsOK + "    timezone: x${SECRET}\n" + mappingsOK},
		{"token in a list", sourceOK + "targets:\n  lark:\n    type: feishu\n    workspace_id: ws\n    user_access_token: [" + secret + "]\n" + mappingsOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.text, env)
			require.Error(t, err)
			assert.NotContains(t, err.Error(), secret)
		})
	}
}

func TestRedactedDSN(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"postgres://u:pw@db:5432/app?sslmode=disable", "postgres://u:xxxxx@db:5432/app?sslmode=disable"},
		{"postgres://u@db/app", "postgres://u@db/app"},
		{"postgres://db/app", "postgres://db/app"},
		{"postgresql://u:p@ss/w:rd@db/app", "postgresql://u:xxxxx@db/app"},
		{"postgres://u:p%zz@db/app", "postgres://u:xxxxx@db/app"},
		{"postgres://u@db/app?password=pw&sslmode=disable", "postgres://u@db/app?password=xxxxx&sslmode=disable"},
		{"postgres://u@db/app?sslmode=disable&password=pw#frag", "postgres://u@db/app?sslmode=disable&password=xxxxx"},
		{"host=db password=pw dbname=app", "host=db password=xxxxx dbname=app"},
		{"password = 'p w\\' x' host=db", "password = xxxxx host=db"},
		{"host=db mypassword=visible password=pw", "host=db mypassword=visible password=xxxxx"},
		{"host=db password=", "host=db password=xxxxx"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			assert.Equal(t, tt.want, Source{DSN: tt.dsn}.RedactedDSN())
		})
	}
}

func TestColumnForms(t *testing.T) {
	cfg := mustParse(t, sourceOK+targetsOK+mappingsOK+`    columns:
      id: customer_id
      email:
      full_name: {name: name}
      created_at: {name: created, format: unix_ms}
      updated_at: {format: unix_s}
      total: {format: string}
      doc: {format: json}
`, nil)
	m := cfg.Mappings[0]
	assert.True(t, m.ColumnsGiven)
	assert.Equal(t, []Column{
		{Source: "id", Name: "customer_id", Line: 16},
		{Source: "email", Name: "email", Line: 17},
		{Source: "full_name", Name: "name", Line: 18},
		{Source: "created_at", Name: "created", Format: mapping.FormatUnixMS, Line: 19},
		{Source: "updated_at", Name: "updated_at", Format: mapping.FormatUnixS, Line: 20},
		{Source: "total", Name: "total", Format: mapping.FormatString, Line: 21},
		{Source: "doc", Name: "doc", Format: mapping.FormatJSON, Line: 22},
	}, m.Columns, "in file order")

	cfg = mustParse(t, sourceOK+targetsOK+mappingsOK+"    columns:\n", nil)
	assert.False(t, cfg.Mappings[0].ColumnsGiven, "columns left empty means every column")
	assert.Empty(t, cfg.Mappings[0].Columns)
}

func TestOnDeleteForms(t *testing.T) {
	tests := []struct {
		value string
		want  OnDelete
	}{
		{"delete", OnDelete{Mode: mapping.DeleteRow}},
		{"ignore", OnDelete{Mode: mapping.DeleteIgnore}},
		{"{soft: deleted}", OnDelete{Mode: mapping.DeleteSoft, SoftColumn: "deleted"}},
		{"\n      soft: is_deleted", OnDelete{Mode: mapping.DeleteSoft, SoftColumn: "is_deleted"}},
		{"", OnDelete{Mode: mapping.DeleteRow}},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			cfg := mustParse(t, sourceOK+targetsOK+mappingsOK+"    on_delete: "+tt.value+"\n", nil)
			assert.Equal(t, tt.want, cfg.Mappings[0].OnDelete)
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{in: "0", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "512B", want: 512},
		{in: "512KiB", want: 512 << 10},
		{in: "64MiB", want: 64 << 20},
		{in: "64 MiB", want: 64 << 20},
		{in: "64mib", want: 64 << 20},
		{in: "1GiB", want: 1 << 30},
		{in: "2TiB", want: 2 << 40},
		{in: "10KB", want: 10_000},
		{in: "10MB", want: 10_000_000},
		{in: "3GB", want: 3_000_000_000},
		{in: "1TB", want: 1_000_000_000_000},
		{in: "9223372036854775807", want: 1<<63 - 1},
		{in: "9223372036854775808", err: true},
		{in: "8388608TiB", err: true},
		{in: "", err: true},
		{in: "MiB", err: true},
		{in: "-1", err: true},
		{in: "1.5GiB", err: true},
		{in: "1 M", err: true},
		{in: "64Mb it", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSize(tt.in)
			if tt.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestMappingSource(t *testing.T) {
	for in, want := range map[string]string{"customers": "public.customers", "sales.orders": "sales.orders"} {
		cfg := mustParse(t, sourceOK+targetsOK+"mappings:\n  - {source: "+in+", target: lark, table: t}\n", nil)
		assert.Equal(t, want, cfg.Mappings[0].Source)
	}
	for _, in := range []string{"a.b.c", ".x", "x.", "'.'"} {
		_, err := parse(t, sourceOK+targetsOK+"mappings:\n  - {source: "+in+", target: lark, table: t}\n", nil)
		assert.ErrorContains(t, err, "is not a table name", in)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "replicator.yaml")
	require.NoError(t, os.WriteFile(path, []byte(sourceOK+"  slot: ${SLOT}\n"+targetsOK+mappingsOK), 0o600))

	cfg, err := Load(path, fakeEnv(map[string]string{"SLOT": "from_env"}))
	require.NoError(t, err)
	assert.Equal(t, "from_env", cfg.Source.Slot)

	_, err = Load(path, fakeEnv(nil))
	assert.EqualError(t, err, path+":3: source.slot: environment variable SLOT is not set: set it, or write ${SLOT:-default}")

	_, err = Load(filepath.Join(dir, "missing.yaml"), nil)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// FuzzParse checks that no file, however broken, makes Parse panic, and that
// a failed Parse always says why.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(filepath.Join("..", "config.example.yaml"))
	require.NoError(f, err)
	for _, seed := range []string{
		string(example), sourceOK + targetsOK + mappingsOK, "", "# only a comment\n", "---\n", "~", "[]", "a: &a [*a]",
		"source: *undefined", "targets: {x: {type: ${T}}}", "mappings: [~, [], {columns: {a: ~}}, {on_delete: {}}]",
		"targets: {x: *y}\n", "? [a]\n: b\n", "source: {dsn: !!binary aGk=}",
	} {
		f.Add(seed)
	}
	env := fakeEnv(exampleEnv())
	f.Fuzz(func(t *testing.T, text string) {
		cfg, err := Parse("fuzz.yaml", []byte(text), env)
		if err == nil {
			require.NotNil(t, cfg)
			require.NotEmpty(t, cfg.Mappings)
		} else {
			require.NotEmpty(t, err.Error())
		}
	})
}

// The state store is files by default; postgres needs a schema-qualified
// table name.
func TestStateStore(t *testing.T) {
	cfg, err := parse(t, sourceOK+"state:\n  store: postgres\n  table: ops.replicator_state\n"+targetsOK+mappingsOK, nil)
	require.NoError(t, err)
	assert.Equal(t, StorePostgres, cfg.State.Store)
	assert.Equal(t, "ops.replicator_state", cfg.State.Table)

	for text, want := range map[string]string{
		"state:\n  store: redis\n":                    "test.yaml:4: state.store:",
		"state:\n  store: postgres\n  table: state\n": `test.yaml:5: state.table: "state" is not a schema-qualified table name`,
		"state:\n  store: postgres\n  table: a.B-c\n": "state.table:",
	} {
		_, err := parse(t, sourceOK+text+targetsOK+mappingsOK, nil)
		require.Error(t, err, text)
		assert.Contains(t, err.Error(), want, text)
	}
}
