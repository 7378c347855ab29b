package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMalformedDSNNeverShowsPassword loads DSNs whose password pgx cannot
// read, or would read partly as the host, written in the file and expanded
// from the environment: the message names the line and says what to do, and
// holds no piece of the password.
func TestMalformedDSNNeverShowsPassword(t *testing.T) {
	const password = "Zq7@Xk9:Wv3/Jm5"
	pieces := []string{password, "Zq7", "Xk9", "Wv3", "Jm5"}
	tests := []struct {
		name, dsn, want string
		env             map[string]string
	}{
		{name: "unescaped @", dsn: "postgres://u:Zq7@Xk9@db.example/app", want: "percent-encode special characters in the password"},
		{name: "unescaped /", dsn: "postgres://u:Zq7/Xk9@db.example/app", want: "percent-encode special characters in the password"},
		{name: "unescaped @ : /", dsn: "postgres://u:" + password + "@db.example:5432/app", want: "percent-encode special characters in the password"},
		{name: "missing @", dsn: "postgres://u:Zq7Xk9Wv3/db.example/app", want: "percent-encode special characters in the password"},
		{name: "unescaped %", dsn: "postgres://u:Zq7%Xk9@db.example/app", want: "is not a valid connection URL"},
		{name: "no scheme", dsn: "u:Zq7@db.example/app", want: "is neither a postgres:// URL nor key=value settings"},
		{name: "keyword form with a bad quote", dsn: "host=db.example password='Zq7 Xk9 dbname=app", want: "closing quote"},
		{name: "keyword form with a space", dsn: "host=db.example password=Zq7 Xk9 dbname=app", want: "single quotes"},
		{
			name: "password from the environment", dsn: "postgres://u:${PW}@db.example/app",
			env: map[string]string{"PW": password}, want: "percent-encode special characters in the password",
		},
		{
			name: "whole DSN from the environment", dsn: "${PGDSN}",
			env: map[string]string{"PGDSN": "postgres://u:" + password + "@db.example/app"}, want: "percent-encode",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			quoted := "'" + strings.ReplaceAll(tt.dsn, "'", "''") + "'"
			_, err := parse(t, "source:\n  dsn: "+quoted+"\n"+targetsOK+mappingsOK, tt.env)
			msgs := problems(t, err)
			require.Len(t, msgs, 1, "%q", msgs)
			assert.True(t, strings.HasPrefix(msgs[0], "test.yaml:2: source.dsn: "), msgs[0])
			assert.Contains(t, msgs[0], tt.want)
			for _, p := range pieces {
				assert.NotContains(t, msgs[0], p)
			}
		})
	}
}
