package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/replicator-cdc/replicator/targets/feishu"
	"github.com/replicator-cdc/replicator/targets/gptbots"
)

const (
	larkOnly = `targets:
  lark:
    type: feishu
    workspace_id: ws
    user_access_token: t
`
	botsOnly = `targets:
  bots:
    type: gptbots
    api_key: k
`
	larkMapping = "mappings:\n  - {source: c, target: lark, table: t}\n"
	botsMapping = "mappings:\n  - {source: c, target: bots, table: t}\n"
)

// TestTargetSettingsValidatedAtLoad checks that a value the target package
// refuses fails at load, with the file, line and key, instead of later in
// the writer's constructor with neither.
func TestTargetSettingsValidatedAtLoad(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{
			name: "filter too short for the writer",
			text: sourceOK + larkOnly + "    max_filter_length: 50\n" + larkMapping,
			want: "test.yaml:8: targets.lark.max_filter_length: is 50: use at least 100 characters, such as 4000",
		},
		{
			name: "negative rate",
			text: sourceOK + larkOnly + "    requests_per_second: -1\n" + larkMapping,
			want: "test.yaml:8: targets.lark.requests_per_second: is -1: use a number above zero",
		},
		{
			name: "feishu base url",
			text: sourceOK + larkOnly + "    base_url: open.feishu.cn\n" + larkMapping,
			want: `test.yaml:8: targets.lark.base_url: "open.feishu.cn" is not an http or https URL`,
		},
		{
			name: "feishu concurrency zero",
			text: sourceOK + larkOnly + "    max_concurrent_requests: 0\n" + larkMapping,
			want: "test.yaml:8: targets.lark.max_concurrent_requests: is 0: use 1 to 64, such as 16",
		},
		{
			name: "feishu concurrency too high",
			text: sourceOK + larkOnly + "    max_concurrent_requests: 65\n" + larkMapping,
			want: "test.yaml:8: targets.lark.max_concurrent_requests: is 65: use 1 to 64, such as 16",
		},
		{
			name: "gptbots concurrency negative",
			text: sourceOK + botsOnly + "    max_concurrent_requests: -3\n" + botsMapping,
			want: "test.yaml:7: targets.bots.max_concurrent_requests: is -3: use 1 to 64, such as 16",
		},
		{
			name: "gptbots concurrency not a number",
			text: sourceOK + botsOnly + "    max_concurrent_requests: many\n" + botsMapping,
			want: `test.yaml:7: targets.bots.max_concurrent_requests: expected a whole number, got "many"`,
		},
		{
			name: "gptbots empty time zone",
			text: sourceOK + botsOnly + "    timezone: ''\n" + botsMapping,
			want: "test.yaml:7: targets.bots.timezone: is empty: use an IANA time zone such as UTC or Asia/Singapore",
		},
		{
			name: "oauth without its app secret",
			text: sourceOK + "targets:\n  lark:\n    type: feishu\n    workspace_id: ws\n    oauth:\n      app_id: a\n" + larkMapping,
			want: "test.yaml:7: targets.lark.oauth.app_secret: is required: the Feishu app's secret",
		},
		{
			name: "empty oauth",
			text: sourceOK + "targets:\n  lark:\n    type: feishu\n    workspace_id: ws\n    oauth: {}\n" + larkMapping,
			want: "test.yaml:4: targets.lark: needs credentials: set oauth {app_id, app_secret, refresh_token}, or user_access_token",
		},
		{
			name: "value from the environment shown as written",
			text: sourceOK + larkOnly + "    base_url: ${BASE}\n" + larkMapping,
			want: `test.yaml:8: targets.lark.base_url: the expansion of "${BASE}" is not an http or https URL`,
		},
		{
			name: "program-only field is not a setting",
			text: sourceOK + larkOnly + "    max_batch_rows: 10\n" + larkMapping,
			want: `test.yaml:8: targets.lark.max_batch_rows: unknown key "max_batch_rows"; known keys: authorize_url, base_url, ` +
				"max_concurrent_requests, max_filter_length, oauth, request_timeout, requests_per_second, type, user_access_token, workspace_id",
		},
		{
			name: "feishu key on gptbots",
			text: sourceOK + botsOnly + "    max_filter_length: 4000\n" + botsMapping,
			want: "test.yaml:7: targets.bots.max_filter_length: max_filter_length is an option of feishu targets and this target is of type gptbots: remove it",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.text, map[string]string{"BASE": "secret-host"})
			assert.Equal(t, []string{tt.want}, problems(t, err))
		})
	}
}

// TestLoadedTargetsBuildWriters checks that config and the target packages
// agree: what loads, the writers accept, at the bounds too.
func TestLoadedTargetsBuildWriters(t *testing.T) {
	for _, extra := range []string{
		"",
		"    max_concurrent_requests: 1\n",
		"    max_concurrent_requests: 64\n",
		"    requests_per_second: 0.5\n",
	} {
		t.Run(strings.TrimSpace(extra), func(t *testing.T) {
			cfg := mustParse(t, sourceOK+larkOnly+"    max_filter_length: 100\n"+extra+
				strings.TrimPrefix(botsOnly, "targets:\n")+extra+
				larkMapping+"  - {source: d, target: bots, table: t}\n", nil)
			lark := *cfg.Targets["lark"].Feishu
			lark.StateDir = t.TempDir()
			_, err := feishu.New(lark, feishu.Deps{})
			require.NoError(t, err)
			_, err = gptbots.New(*cfg.Targets["bots"].GPTBots, gptbots.Deps{})
			require.NoError(t, err)
		})
	}
}

// TestEveryTargetSettingDecodes sets every tagged field of both target
// configurations from a file, so that a setting of a type the decoder
// cannot read fails here rather than in a user's file.
func TestEveryTargetSettingDecodes(t *testing.T) {
	for typ, cfg := range map[string]any{TypeFeishu: feishu.Config{}, TypeGPTBots: gptbots.Config{}} {
		t.Run(typ, func(t *testing.T) {
			var b strings.Builder
			fmt.Fprintf(&b, "targets:\n  x:\n    type: %s\n", typ)
			writeSettings(t, &b, reflect.TypeOf(cfg), "    ")
			_, err := parse(t, sourceOK+b.String()+"mappings:\n  - {source: c, target: x, table: t}\n", nil)
			if err != nil {
				assert.NotContains(t, err.Error(), "cannot read")
				assert.NotContains(t, err.Error(), "unknown key")
			}
		})
	}
}

func writeSettings(t *testing.T, b *strings.Builder, typ reflect.Type, indent string) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		switch {
		case f.Type == reflect.TypeOf(time.Duration(0)):
			fmt.Fprintf(b, "%s%s: 1s\n", indent, key)
		case f.Type.Kind() == reflect.Struct:
			fmt.Fprintf(b, "%s%s:\n", indent, key)
			writeSettings(t, b, f.Type, indent+"  ")
		case f.Type.Kind() == reflect.String && strings.HasSuffix(key, "_url"):
			fmt.Fprintf(b, "%s%s: https://example.com\n", indent, key)
		case f.Type.Kind() == reflect.String:
			fmt.Fprintf(b, "%s%s: v\n", indent, key)
		case f.Type.Kind() == reflect.Int, f.Type.Kind() == reflect.Float64:
			fmt.Fprintf(b, "%s%s: 1\n", indent, key)
		default:
			t.Errorf("setting %s has Go type %s, which no test value is written for", key, f.Type)
		}
	}
}
