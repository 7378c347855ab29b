package replicator

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// testName is a test or fuzz function's name in backquotes, as
// docs/design.md names the tests that prove an invariant.
var testName = regexp.MustCompile("`((?:Test|Fuzz)[A-Za-z0-9_]+)`")

// TestDesignDocNamesRealTests keeps docs/design.md true: every test it
// names exists in the tree, and every numbered invariant names at least
// one.
func TestDesignDocNamesRealTests(t *testing.T) {
	doc, err := os.ReadFile("docs/design.md")
	if err != nil {
		t.Fatal(err)
	}
	defined := definedTests(t, ".")
	for _, m := range testName.FindAllStringSubmatch(string(doc), -1) {
		if !defined[m[1]] {
			t.Errorf("docs/design.md names %s, which no _test.go file defines: rename it there, or name the test that proves the invariant now", m[1])
		}
	}
	invariants := 0
	for _, item := range invariantItems(string(doc)) {
		invariants++
		if !testName.MatchString(item) {
			t.Errorf("docs/design.md: invariant %q names no test", strings.SplitN(item, "\n", 2)[0])
		}
	}
	if invariants == 0 {
		t.Error("docs/design.md lists no numbered invariants")
	}
}

// definedTests are the Test and Fuzz functions of every _test.go file
// below root.
func definedTests(t *testing.T, root string) map[string]bool {
	t.Helper()
	decl := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz)[A-Za-z0-9_]+)\(`)
	out := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllStringSubmatch(string(src), -1) {
			out[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// invariantItems are the numbered items of the "## Invariants" section,
// each with its continuation lines.
func invariantItems(doc string) []string {
	_, section, _ := strings.Cut(doc, "\n## Invariants\n")
	section, _, _ = strings.Cut(section, "\n## ")
	item := regexp.MustCompile(`(?m)^\d+\. `)
	starts := item.FindAllStringIndex(section, -1)
	var out []string
	for i, s := range starts {
		end := len(section)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		out = append(out, section[s[0]:end])
	}
	return out
}
