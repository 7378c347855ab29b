// Package pgdsn reads a PostgreSQL connection string (a postgres:// URL or
// libpq key=value settings) the way pgx does, and says what is wrong with
// one that pgx cannot read, or would read part of the password as a host or
// database name, without ever quoting it: a broken connection string is the
// one most likely to put its password where a message shows it.
package pgdsn

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// encodeHint is what to do about a special character in a URL's user
// name or password.
const encodeHint = "percent-encode special characters in the password and user name (@ as %40, / as %2F, : as %3A, % as %25, space as %20)"

// Every error of Parse is one of these fixed texts, so that none can hold a
// piece of the connection string.
var (
	errScheme       = errors.New("is not a PostgreSQL URL: start it with postgres://")
	errStrayAt      = errors.New("has a second @, or a / before the @, so part of the password would be read as the host, database or a parameter: " + encodeHint + "; an @ in a parameter value too")
	errShape        = errors.New("is neither a postgres:// URL nor key=value settings such as host=127.0.0.1 dbname=app")
	errURL          = errors.New("is not a valid connection URL: " + encodeHint)
	errUnclosed     = errors.New(`has a quoted value without its closing quote: end it with ', and write \' for a quote and \\ for a backslash inside it`)
	errKeywordValue = errors.New(`is not valid key=value settings: separate settings with spaces, and put a value holding a space, quote or backslash in single quotes, with \' and \\ for a quote and a backslash inside`)
	errURLPort      = errors.New("has a port that is not a number (postgres://user:password@host:5432/db): " + encodeHint)
	errPort         = errors.New("has a port that is not a number: use a port from 1 to 65535")
	errTLS          = errors.New("has TLS settings that cannot be used: check sslmode and that the sslrootcert, sslcert and sslkey files exist and are readable")
	errService      = errors.New("names a service that cannot be read: check service, and the service file (PGSERVICEFILE)")
	errRejected     = errors.New("has a setting the PostgreSQL driver rejects (its message is left out, since it may quote the password): check the settings against https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS")
)

// Parse parses dsn with pgx. Its errors say what is wrong and what to do,
// and hold no part of dsn.
func Parse(dsn string) (*pgx.ConnConfig, error) {
	isURL := false
	if scheme, rest, ok := strings.Cut(dsn, "://"); ok {
		if scheme != "postgres" && scheme != "postgresql" {
			return nil, errScheme
		}
		if strayAt(rest) {
			return nil, errStrayAt
		}
		isURL = true
	} else if !strings.Contains(dsn, "=") {
		return nil, errShape
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, explain(err, isURL, dsn)
	}
	return cfg, nil
}

// strayAt reports whether a URL (the text after "scheme://") has an @
// besides the one that ends the user information, or a / before that @.
// libpq and pgx end the user information at the first @ that comes before
// any /: an unencoded @ in the password leaves its tail in the host or the
// parameters, and an unencoded / moves it all into the port or database.
// An @ in a parameter value must be encoded too, since no rule can tell it
// from a password's.
func strayAt(rest string) bool {
	at := strings.IndexByte(rest, '@')
	if at < 0 {
		return false
	}
	return strings.Contains(rest[at+1:], "@") || strings.Contains(rest[:at], "/")
}

// explain turns a pgx parse error into advice. pgx's own message is left
// out: it quotes the connection string with the password masked as well as
// it can guess, and for a malformed string the guess can be wrong. Only its
// reason, when it is one of the fixed texts below, is used.
func explain(err error, isURL bool, dsn string) error {
	switch reason(err) {
	case "failed to parse as URL":
		return errURL
	case "failed to parse as keyword/value":
		if unclosedQuote(dsn) {
			return errUnclosed
		}
		return errKeywordValue
	case "invalid port":
		if isURL {
			return errURLPort
		}
		return errPort
	case "failed to configure TLS":
		return errTLS
	case "failed to read service":
		return errService
	}
	return errRejected
}

// reason returns the fixed part of a pgx parse error: its text without the
// connection string and without the wrapped error, which may quote a piece
// of the string.
func reason(err error) string {
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return ""
	}
	blank := *pe
	blank.ConnString = ""
	msg, ok := strings.CutPrefix(blank.Error(), "cannot parse ``: ")
	if !ok {
		return ""
	}
	if inner := errors.Unwrap(pe); inner != nil {
		msg = strings.TrimSuffix(msg, " ("+inner.Error()+")")
	}
	return msg
}

// unclosedQuote reports whether a key=value string opens a single quote
// that no unescaped quote closes.
func unclosedQuote(s string) bool {
	open := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && open:
			i++
		case s[i] == '\'':
			open = !open
		}
	}
	return open
}
