// Package setting lets a target package validate its own configuration and
// name each problem by the key the configuration file spells, so that the
// config package can report it with the file and line, all problems at once.
package setting

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Problem is one setting that is not allowed.
type Problem struct {
	// Key is the setting's path under the target as the file spells it,
	// such as "oauth.app_id"; empty for the target as a whole.
	Key string
	// Value, when Quoted, is the offending value, shown before Msg. The
	// config package shows a value read from an environment variable as
	// the file writes it instead, since the variable may hold a secret;
	// a secret setting is never Quoted.
	Value  string
	Quoted bool
	// Msg says what is wrong and what to do.
	Msg string
	// From lists other settings the problem follows from: when one of them
	// could not be read, that is what gets reported, not this.
	From []string
}

func (p Problem) Error() string {
	msg := p.Msg
	if p.Quoted {
		msg = strconv.Quote(p.Value) + " " + msg
	}
	if p.Key == "" {
		return msg
	}
	return p.Key + ": " + msg
}

// Problems collects the problems of one configuration.
type Problems []Problem

// Add records a problem of the setting key.
func (ps *Problems) Add(key, format string, args ...any) {
	*ps = append(*ps, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
}

// AddFrom records a problem of the setting key that follows from the
// settings from.
func (ps *Problems) AddFrom(key string, from []string, format string, args ...any) {
	*ps = append(*ps, Problem{Key: key, From: from, Msg: fmt.Sprintf(format, args...)})
}

// AddValue records a problem of the setting key that shows its value.
func (ps *Problems) AddValue(key, value, format string, args ...any) {
	*ps = append(*ps, Problem{Key: key, Value: value, Quoted: true, Msg: fmt.Sprintf(format, args...)})
}

// URL checks an http or https URL.
func (ps *Problems) URL(key, value string) {
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		ps.AddValue(key, value, "is not an http or https URL")
	}
}

// Rate checks a number of requests per second.
func (ps *Problems) Rate(key string, perSecond float64) {
	if !(perSecond > 0) {
		ps.Add(key, "is %v: use a number above zero", perSecond)
	}
}

// Duration checks a duration that must be above zero.
func (ps *Problems) Duration(key string, d time.Duration) {
	if d <= 0 {
		ps.Add(key, "is %s: use a duration above zero, such as 10s", d)
	}
}

// Range checks a whole number from lo to hi; example is a good value.
func (ps *Problems) Range(key string, n, lo, hi, example int) {
	if n < lo || n > hi {
		ps.Add(key, "is %d: use %d to %d, such as %d", n, lo, hi, example)
	}
}

// Err joins the problems into one error, each prefixed; nil when there are
// none.
func (ps Problems) Err(prefix string) error {
	if len(ps) == 0 {
		return nil
	}
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return fmt.Errorf("%s: %w", prefix, errors.Join(errs...))
}
