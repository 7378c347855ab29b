//go:build race

package e2e

// raceEnabled says the tests run under the race detector; the daemon binary
// is then built with it too, so that a data race in the subprocess fails
// the test as one in-process does.
const raceEnabled = true
