package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fakeEnv(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func TestExpandEnv(t *testing.T) {
	env := fakeEnv(map[string]string{"USER": "alice", "EMPTY": "", "PW": "p@ss:#{}"})
	tests := []struct {
		in, want string
		err      string // substring; empty means success
		offset   int
	}{
		{in: "plain", want: "plain"},
		{in: "${USER}", want: "alice"},
		{in: "u=${USER}, again ${USER}!", want: "u=alice, again alice!"},
		{in: "${PW}", want: "p@ss:#{}"},
		{in: "${UNSET:-fallback}", want: "fallback"},
		{in: "${USER:-fallback}", want: "alice"},
		{in: "${EMPTY:-fallback}", want: "fallback"},
		{in: "${EMPTY}", want: ""},
		{in: "${UNSET:-}", want: ""},
		{in: "${UNSET:-a:-b}", want: "a:-b"},
		{in: "${UNSET:-${USER}}", want: "alice"},
		{in: "${UNSET:-${ALSO_UNSET:-deep}}", want: "deep"},
		{in: "${USER:-${UNSET}}", want: "alice"},
		{in: "${UNSET:-$$}", want: "$"},
		{in: "$$", want: "$"},
		{in: "cost: $$5", want: "cost: $5"},
		{in: "$${USER}", want: "${USER}"},
		{in: "$$$${USER}", want: "$${USER}"},
		{in: "$$${USER}", want: "$alice"},
		{in: "${UNSET}", err: "environment variable UNSET is not set"},
		{in: "abc ${UNSET}", err: "UNSET", offset: 4},
		{in: "${UNSET:-${INNER}}", err: "environment variable INNER is not set", offset: 9},
		{in: "$USER", err: "a lone $"},
		{in: "price $", err: "a lone $", offset: 6},
		{in: "${USER", err: "is not closed"},
		{in: "${}", err: `"" is not a variable name`},
		{in: "${1X}", err: `"1X" is not a variable name`},
		{in: "${USER-x}", err: `"USER-x" is not a variable name`},
		{in: "${A B}", err: "is not a variable name"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := expandEnv(tt.in, env)
			if tt.err == "" {
				require.Nil(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			require.NotNil(t, err)
			assert.Contains(t, err.Error(), tt.err)
			assert.Equal(t, tt.offset, err.offset)
		})
	}
}

func TestExpandEnvErrorHidesValues(t *testing.T) {
	// A failure after a set variable must not carry that variable's value.
	env := fakeEnv(map[string]string{"SECRET": "hunter2"})
	_, err := expandEnv("${SECRET} ${UNSET}", env)
	require.NotNil(t, err)
	assert.NotContains(t, err.Error(), "hunter2")
}

func TestProtect(t *testing.T) {
	text, restore := protect([]byte("a: {x: ${X}, y: $${Y}} # ${COMMENT}\nb: ${OPEN\nc: ${Z:-{}}\n"))
	assert.NotContains(t, text, "${X}")
	assert.NotContains(t, text, "${COMMENT}")
	assert.Contains(t, text, "$${Y}", "an escaped reference stays as written")
	assert.Contains(t, text, "b: ${OPEN\n", "a reference left open stays as written")
	assert.Equal(t, 3, strings.Count(text, "\n"), "lines keep their numbers")
	assert.Equal(t, "a: {x: ${X}, y: $${Y}} # ${COMMENT}\nb: ${OPEN\nc: ${Z:-{}}\n", restore.Replace(text))
}

func TestProtectAvoidsUserText(t *testing.T) {
	in := "a: envref0z ${X}\n"
	text, restore := protect([]byte(in))
	assert.Contains(t, text, "envref0z ")
	assert.Equal(t, in, restore.Replace(text))
}

// FuzzExpandEnv checks that expansion never panics, that a dollar sign in the
// output always comes from a $$ escape (the variables here hold none), so
// that no reference is left unexpanded, and that escaping every dollar sign
// gives the text back.
func FuzzExpandEnv(f *testing.F) {
	for _, seed := range []string{
		"", "plain", "${A}", "${B:-x}", "$$", "$${A}", "${A:-${B:-${C}}}", "$", "${", "${A", "}", "${:-}",
		"${A:-$$}", "${A:-a$}{", "postgres://u:${PW}@h/db", "${A}${B}$${C}",
	} {
		f.Add(seed)
	}
	// Names of even length are set, so that both branches of a default run.
	env := func(name string) (string, bool) {
		if len(name)%2 == 0 {
			return "v{}" + name, true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := expandEnv(in, env)
		if err == nil {
			if n, escapes := strings.Count(out, "$"), strings.Count(in, "$$"); n > escapes {
				t.Errorf("expandEnv(%q) = %q: %d dollar signs from %d escapes", in, out, n, escapes)
			}
			if !strings.Contains(in, "$$") && strings.Contains(out, "${") {
				t.Errorf("expandEnv(%q) = %q: unexpanded reference", in, out)
			}
		} else if err.offset < 0 || err.offset >= len(in) {
			t.Errorf("expandEnv(%q): error %q at offset %d, outside the input", in, err, err.offset)
		}
		escaped := strings.ReplaceAll(in, "$", "$$")
		back, err := expandEnv(escaped, env)
		if err != nil || back != in {
			t.Errorf("expandEnv(%q) = %q, %v; want the unescaped text", escaped, back, err)
		}
	})
}
