package e2e

import (
	"fmt"
	"testing"
	"time"
)

// target is one kind of target the end-to-end scenarios run against, as
// targets/writertest's suite runs against each writer.
type target struct {
	name string
	// zone is the source database's TimeZone: one a user of the target
	// might well have.
	zone string
	// values are what the target holds; poison is set by a scenario.
	values palette
	// columns say how the target's stored values compare with PostgreSQL's.
	columns columns
	// faultRate is how many record writes fail in the mirror scenario.
	faultRate float64
	// shutdown is the daemon's shutdown_timeout: long enough to drain the
	// target's retries at its rate.
	shutdown time.Duration
	// start starts the target's fake holding the items table, without
	// faults; seed draws its random faults.
	start func(t *testing.T, seed uint64) fake
}

// targets are the targets every scenario that makes sense for both runs
// against.
func targets() []target { return []target{feishuTarget(), gptbotsTarget()} }

// forEachTarget runs a scenario once per target, as a subtest named after
// the target.
func forEachTarget(t *testing.T, scenario func(t *testing.T, tg target)) {
	for _, tg := range targets() {
		t.Run(tg.name, func(t *testing.T) { scenario(t, tg) })
	}
}

// fake is a target's fake server as the scenarios drive it.
type fake interface {
	// yaml is the configuration's targets and mappings sections, which
	// mirror public.items into the fake; the credential comes from the
	// environment variable secret names.
	yaml() string
	// secret is the environment variable holding the credential, and its
	// value.
	secret() (name, value string)
	// rows is the fake's items table: the target's system columns left
	// out, a NULL field present as nil.
	rows() []map[string]any
	// faults makes record writes fail with probability p, drawn from the
	// target's own mix of faults; 0 turns them off.
	faults(p float64)
	// injectEach queues one of each fault of the mix for the next writes,
	// so that each certainly happens.
	injectEach()
	// down makes every record write fail: an error answer, or none within
	// the request timeout.
	down()
	// writeFaults counts the record writes by the fault they met, by the
	// fault's name ("none" for none).
	writeFaults() map[string]int
	// faultKinds names the faults of the mix.
	faultKinds() []string
	// refuses says the fake refuses records whose name starts with
	// poisonPrefix.
	refuses() bool
	// checkDeadLetters checks that the dead letters are exactly the
	// records the fake refused, given the source's rows now.
	checkDeadLetters(t *testing.T, stateDir string, src map[string]map[string]any)
	// checkRequests checks the target's own promises about the requests
	// the daemon sent (its rate limit), and returns a line about them.
	checkRequests(t *testing.T) string
}

// configYAML is the daemon's configuration mirroring items into the fake.
// http.listen asks for any free port, so that two daemons (or a
// colleague's) never fight over the default one. A small batchRows makes
// the snapshot take several requests, and so seconds: long enough to be
// interrupted.
func configYAML(src database, stateDir string, batchRows int, shutdown time.Duration, fk fake) string {
	return fmt.Sprintf(`
source:
  dsn: %q
  slot: %s
  publication: %s
  status_interval: 1s
state:
  dir: %q
pipeline:
  flush_interval: 200ms
  batch_rows: %d
  snapshot_chunk_rows: 500
  shutdown_timeout: %s
log:
  level: info
  format: json
http:
  listen: 127.0.0.1:0
%s`, src.dsn, src.name, src.name, stateDir, batchRows, shutdown, fk.yaml())
}

// lookupSecret is a getenv that knows only the fake's credential.
func lookupSecret(fk fake) func(string) (string, bool) {
	name, value := fk.secret()
	return func(n string) (string, bool) { return value, n == name }
}

// begin creates the test's database with n rows and starts the target's
// fake, seeding its random faults; with poison, and a fake that refuses
// records, the rows and the values returned include names it refuses.
func begin(t *testing.T, tg target, n int, seed uint64, poison bool) (database, fake, palette) {
	t.Helper()
	src := newDatabase(t, tg.zone)
	fk := tg.start(t, seed)
	values := tg.values
	values.poison = poison && fk.refuses()
	seedRows(t, src.db, n, values)
	return src, fk, values
}
