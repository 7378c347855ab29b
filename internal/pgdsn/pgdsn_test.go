package pgdsn

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// password is split into pieces on @ : and /, each distinctive enough that
// finding one in a message means the password leaked.
const password = "Zq7@Xk9:Wv3/Jm5"

var pieces = []string{"Zq7", "Xk9", "Wv3", "Jm5"}

// MalformedDSNs are connection strings with a password that pgx cannot read,
// or would read partly as the host, each with what its message must say.
var malformedDSNs = []struct {
	name, dsn, want string
}{
	{"unescaped @ in the password", "postgres://u:Zq7@Xk9@db.example/app", "percent-encode"},
	{"the whole password unescaped", "postgres://u:" + password + "@db.example:5432/app", "percent-encode"},
	{"unescaped / in the password", "postgres://u:Zq7/Xk9@db.example/app", "percent-encode"},
	{"unescaped : and / in the password", "postgres://u:Zq7:Xk9/Wv3@db.example/app?sslmode=disable", "percent-encode"},
	{"@ and a query", "postgres://u:Zq7@Xk9@db.example/app?application_name=a@b", "percent-encode"},
	{"password ending in the parameters", "postgres://u:@?Zq7=@db.example/app", "percent-encode"},
	{"password ending in a parameter value", "postgres://u:Zq7@Xk9?application_name=Wv3@db.example/app", "percent-encode"},
	{"missing @", "postgres://u:Zq7Xk9/db.example/app", "percent-encode"},
	{"unescaped %", "postgres://u:Zq7%Xk9@db.example/app", "percent-encode"},
	{"space in the password", "postgres://u:Zq7 Xk9@db.example/app", "percent-encode"},
	{"no scheme", "u:Zq7@db.example/app", "neither a postgres:// URL nor key=value"},
	{"scheme typo", "postgres//u:Zq7@db.example/app", "neither a postgres:// URL nor key=value"},
	{"other scheme", "mysql://u:Zq7@Xk9@db.example/app", "start it with postgres://"},
	{"unclosed quote", "host=db.example password='Zq7 Xk9 dbname=app", "closing quote"},
	{"unquoted space", "host=db.example password=Zq7 Xk9 dbname=app", "single quotes"},
	{"bad sslmode after a password", "postgres://u:Zq7@db.example/app?sslmode=Xk9", "sslmode"},
	{"bad port after a password", "postgres://u:Zq7@db.example:Xk9/app", "port"},
	{"password parameter and a bad setting", "postgres://db.example/app?password=Zq7&connect_timeout=Xk9", "check the settings"},
}

func TestParseNeverQuotesThePassword(t *testing.T) {
	for _, tt := range malformedDSNs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.dsn)
			require.Error(t, err)
			msg := err.Error()
			assert.Contains(t, msg, tt.want, "the message says what to do")
			assert.NotContains(t, msg, password)
			for _, p := range pieces {
				assert.NotContains(t, msg, p)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct{ dsn, host, database, password string }{
		{"postgres://u:pw@db.example:5432/app?sslmode=disable", "db.example", "app", "pw"},
		{"postgres://u:" + url.QueryEscape(password) + "@db.example/app", "db.example", "app", password},
		{"postgres://u:Zq7%40Xk9%2FWv3@db.example/app", "db.example", "app", "Zq7@Xk9/Wv3"},
		{"postgres://u:a:b?c#d@db.example/app", "db.example", "app", "a:b?c#d"},
		{"postgres://u:pw@db.example/app?application_name=me%40home", "db.example", "app", "pw"},
		{"host=db.example dbname=app password='Zq7 Xk9\\'s'", "db.example", "app", "Zq7 Xk9's"},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			cfg, err := Parse(tt.dsn)
			require.NoError(t, err)
			assert.Equal(t, tt.host, cfg.Host)
			assert.Equal(t, tt.database, cfg.Database)
			assert.Equal(t, tt.password, cfg.Password)
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"postgres://u:pw@db:5432/app?sslmode=disable", "postgres://u:xxxxx@db:5432/app?sslmode=disable"},
		{"postgres://u:p@ss@db/app", "postgres://u:xxxxx@db/app"},
		{"postgres://u@db/app?sslpassword=pw&sslmode=verify-full", "postgres://u@db/app?sslpassword=xxxxx&sslmode=verify-full"},
		{"postgres://u@db/app?pass%77ord=pw", "postgres://u@db/app?pass%77ord=xxxxx"},
		{"postgres://u@db/app?password=pw#rest", "postgres://u@db/app?password=xxxxx"},
		{"host=db sslpassword=pw password='a b'", "host=db sslpassword=xxxxx password=xxxxx"},
		{"host=db mysslpassword=visible", "host=db mysslpassword=visible"},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			assert.Equal(t, tt.want, Redact(tt.dsn))
		})
	}
}

// FuzzParsePassword checks, for any password put into a URL as is, that pgx
// either reads all of it as the password and nothing else changes, or Parse
// refuses it with one of its fixed messages, which cannot quote it.
func FuzzParsePassword(f *testing.F) {
	for _, seed := range []string{"pw", password, "a@b", "a/b", "a:b", "a?b", "a#b", "100%", "%41", " pw ", "a,b", "[::1]", "a@b/c?d", "@?="} {
		f.Add(seed)
	}
	fixed := []error{errScheme, errStrayAt, errShape, errURL, errUnclosed, errKeywordValue, errURLPort, errPort, errTLS, errService, errRejected}
	f.Fuzz(func(t *testing.T, pw string) {
		cfg, err := Parse("postgres://u:" + pw + "@db.example/app")
		if err != nil {
			assert.Contains(t, fixed, err)
			return
		}
		assert.Equal(t, "u", cfg.User)
		assert.Equal(t, "db.example", cfg.Host)
		assert.Equal(t, "app", cfg.Database)
		if decoded, err := url.PathUnescape(strings.Trim(pw, " ")); err == nil && decoded != "" {
			assert.Equal(t, decoded, cfg.Password)
		}
	})
}
