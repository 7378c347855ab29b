package config

import (
	"net/url"
	"strings"
)

// dsnProblem says what is wrong with a DSN, without quoting it.
func dsnProblem(dsn string) string {
	if scheme, _, ok := strings.Cut(dsn, "://"); ok {
		if scheme != "postgres" && scheme != "postgresql" {
			return "is not a PostgreSQL URL: start it with postgres://"
		}
		// The parse error is left out: it quotes the URL, password included.
		if _, err := url.Parse(dsn); err != nil {
			return "is not a valid URL: percent-encode special characters in the user name and password"
		}
		return ""
	}
	if !strings.Contains(dsn, "=") {
		return "is neither a postgres:// URL nor key=value settings such as host=127.0.0.1 dbname=app"
	}
	return ""
}

// redactDSN hides the password of a URL or key=value DSN. It works on text
// that does not parse too, since a broken DSN is the one most likely to be
// shown in a message.
func redactDSN(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return redactKeywordPassword(dsn)
	}
	// The last @ ends the user info even when the password holds an
	// unescaped @ or /; at worst this hides more than the password.
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if user, _, hasPassword := strings.Cut(rest[:at], ":"); hasPassword {
			rest = user + ":xxxxx" + rest[at:]
		}
	}
	return scheme + "://" + redactQueryPassword(rest)
}

// redactQueryPassword hides the value of a password= query parameter, which
// pgx accepts in a URL.
func redactQueryPassword(s string) string {
	const key = "password="
	for from := 0; ; {
		i := strings.Index(s[from:], key)
		if i < 0 {
			return s
		}
		i += from
		start := i + len(key)
		if i > 0 && (s[i-1] == '?' || s[i-1] == '&') {
			end := len(s)
			if j := strings.IndexAny(s[start:], "&#"); j >= 0 {
				end = start + j
			}
			s = s[:start] + "xxxxx" + s[end:]
		}
		from = start
	}
}

// redactKeywordPassword hides the value of password in libpq key=value
// settings, quoted or not.
func redactKeywordPassword(s string) string {
	const key = "password"
	var b strings.Builder
	for {
		i := strings.Index(s, key)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		after := i + len(key)
		eq := skipSpaces(s, after)
		if i > 0 && !isSpace(s[i-1]) || eq >= len(s) || s[eq] != '=' {
			b.WriteString(s[:after])
			s = s[after:]
			continue
		}
		value := skipSpaces(s, eq+1)
		b.WriteString(s[:value])
		b.WriteString("xxxxx")
		s = s[keywordValueEnd(s, value):]
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func skipSpaces(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

// keywordValueEnd returns the end of the value starting at i: a quoted value
// ends at its unescaped closing quote, a bare one at the next space.
func keywordValueEnd(s string, i int) int {
	if i < len(s) && s[i] == '\'' {
		for j := i + 1; j < len(s); j++ {
			switch s[j] {
			case '\\':
				j++
			case '\'':
				return j + 1
			}
		}
		return len(s)
	}
	for i < len(s) && !isSpace(s[i]) {
		i++
	}
	return i
}
