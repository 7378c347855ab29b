package pgdsn

import (
	"net/url"
	"strings"
)

// Redact hides the passwords (password and sslpassword) of a URL or
// key=value DSN, for messages and logs. It works on text that does not
// parse too, hiding more than the password rather than less; still, show a
// DSN only once Parse has accepted it.
func Redact(dsn string) string {
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
	return scheme + "://" + redactQueryPasswords(rest)
}

// redactQueryPasswords hides the values of the password and sslpassword
// query parameters, which pgx accepts in a URL, whatever the encoding of
// their keys. A # is part of a value, as it is to pgx and libpq.
func redactQueryPasswords(s string) string {
	q := strings.IndexByte(s, '?')
	if q < 0 {
		return s
	}
	pairs := strings.Split(s[q+1:], "&")
	for i, pair := range pairs {
		key, _, hasValue := strings.Cut(pair, "=")
		if decoded, err := url.QueryUnescape(key); err == nil {
			key = decoded
		}
		if hasValue && isPasswordKey(key) {
			pairs[i] = pair[:strings.IndexByte(pair, '=')+1] + "xxxxx"
		}
	}
	return s[:q+1] + strings.Join(pairs, "&")
}

func isPasswordKey(key string) bool {
	return key == "password" || key == "sslpassword"
}

// redactKeywordPassword hides the values of password and sslpassword in
// libpq key=value settings, quoted or not.
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
		start := i
		if strings.HasSuffix(s[:i], "ssl") {
			start = i - len("ssl")
		}
		if start > 0 && !isSpace(s[start-1]) || eq >= len(s) || s[eq] != '=' {
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
