package config

import (
	"fmt"
	"strconv"
	"strings"
)

// expandError is a failed expansion; offset locates it in the value so that
// the message can name the right line of a multi-line value.
type expandError struct {
	offset int
	msg    string
}

func (e *expandError) Error() string { return e.msg }

// expandEnv replaces ${VAR} by the variable's value and ${VAR:-default} by
// the value, or by the default when the variable is unset or empty; the
// default is expanded the same way, and only when it is used. $$ stands for
// a dollar sign. Any other dollar sign is an error rather than literal text,
// so that a typo such as $VAR or ${VAR is never sent to a server as is.
// Errors name variables, never their values.
func expandEnv(s string, env func(string) (string, bool)) (string, *expandError) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' {
			next := strings.IndexByte(s[i:], '$')
			if next < 0 {
				b.WriteString(s[i:])
				break
			}
			b.WriteString(s[i : i+next])
			i += next
			continue
		}
		if strings.HasPrefix(s[i:], "$$") {
			b.WriteByte('$')
			i += 2
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			return "", &expandError{i, "a lone $: write $$ for a dollar sign, or ${VAR} for an environment variable"}
		}
		end := closingBrace(s, i+2)
		if end < 0 {
			return "", &expandError{i, "${ is not closed: add the }, or write $$ for a dollar sign"}
		}
		name, def, hasDef := strings.Cut(s[i+2:end], ":-")
		if !validVarName(name) {
			return "", &expandError{i, fmt.Sprintf("%q is not a variable name: use letters, digits and _ as in ${VAR} or ${VAR:-default}", name)}
		}
		val, set := env(name)
		switch {
		case hasDef && (!set || val == ""):
			expanded, err := expandEnv(def, env)
			if err != nil {
				// The default starts after "${" + name + ":-".
				err.offset += i + 2 + len(name) + 2
				return "", err
			}
			val = expanded
		case !set:
			return "", &expandError{i, fmt.Sprintf("environment variable %s is not set: set it, or write ${%s:-default}", name, name)}
		}
		b.WriteString(val)
		i = end + 1
	}
	return b.String(), nil
}

// closingBrace returns the index of the } that closes the ${ whose body
// starts at from, skipping nested ${…} in a default and $$ escapes; -1 when
// there is none.
func closingBrace(s string, from int) int {
	depth := 1
	for i := from; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "$$"):
			i++
		case strings.HasPrefix(s[i:], "${"):
			depth++
			i++
		case s[i] == '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func validVarName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range []byte(name) {
		letter := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// protect replaces every ${…} reference that closes on its own line by a
// placeholder of letters and digits, which YAML reads as plain text anywhere.
// References may then sit in a flow mapping such as {app_id: ${APP_ID}}, where
// { and } are syntax; a reference in a comment goes away with the comment
// instead of being expanded; and lines keep their numbers. restore puts the
// references back in the parsed values.
func protect(data []byte) (text string, restore *strings.Replacer) {
	s := string(data)
	// The prefix is absent from the file, so that no text of the user's is
	// taken for a placeholder.
	prefix := "envref"
	for strings.Contains(s, prefix) {
		prefix += "x"
	}
	var b strings.Builder
	var pairs []string
	last := 0
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "$$"):
			i++
		case strings.HasPrefix(s[i:], "${"):
			lineEnd := strings.IndexByte(s[i:], '\n')
			if lineEnd < 0 {
				lineEnd = len(s)
			} else {
				lineEnd += i
			}
			end := closingBrace(s[:lineEnd], i+2)
			if end < 0 {
				// Left as written: expansion reports it when it is in a value.
				continue
			}
			// The trailing z keeps placeholder 1 from being a prefix of 12.
			placeholder := prefix + strconv.Itoa(len(pairs)/2) + "z"
			pairs = append(pairs, placeholder, s[i:end+1])
			b.WriteString(s[last:i])
			b.WriteString(placeholder)
			last = end + 1
			i = end
		}
	}
	b.WriteString(s[last:])
	return b.String(), strings.NewReplacer(pairs...)
}
