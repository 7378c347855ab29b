package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicator-cdc/replicator/internal/childproc"
)

// EnvDSN names the environment variable that points the tests at an existing
// server instead of a throwaway one.
const EnvDSN = "REPLICATOR_TEST_DSN"

// ErrExternalServer is returned by Launch when Options asks for server
// settings while EnvDSN is set: that server's settings are not ours to change.
var ErrExternalServer = errors.New("pgtest: cannot apply Options.Settings to the " + EnvDSN + " server")

const (
	// debianRoot holds one bin directory per installed major version.
	debianRoot = "/usr/lib/postgresql"
	// preferredVersion is the major version the replicator is built against.
	preferredVersion = 15
	// readyTimeout bounds startup, which for a fresh cluster takes well
	// under a second; it only keeps a hung server from hanging the tests.
	readyTimeout = 30 * time.Second
	// stopTimeout is how long each shutdown step may take before escalating.
	stopTimeout = 10 * time.Second
	// portAttempts bounds retries when another process takes the port
	// between freePort closing its listener and postgres binding it.
	portAttempts = 5
)

// managedSettings are the connection settings the helper picks itself;
// overriding them would leave it unable to reach its own server.
var managedSettings = []string{"port", "listen_addresses", "unix_socket_directories"}

// defaultSettings tune the server for logical replication tests: enough
// slots and walsenders for parallel tests, and durability switched off
// because the cluster is thrown away.
func defaultSettings() map[string]string {
	return map[string]string{
		"wal_level":              "logical",
		"max_replication_slots":  "40",
		"max_wal_senders":        "40",
		"fsync":                  "off",
		"synchronous_commit":     "off",
		"full_page_writes":       "off",
		"max_connections":        "200",
		"wal_sender_timeout":     "60s",
		"shared_buffers":         "128MB",
		"max_slot_wal_keep_size": "-1",
	}
}

// Options changes how Launch starts a server.
type Options struct {
	// Settings are passed to postgres as -c name=value, replacing the
	// defaults of the same name; {"wal_level": "replica"} starts a server
	// that cannot do logical decoding, for negative tests. port,
	// listen_addresses and unix_socket_directories are refused.
	Settings map[string]string
}

// Cluster is a running PostgreSQL server: either one Launch started, or the
// one EnvDSN names. Its methods are safe for concurrent use.
type Cluster struct {
	conn     connString // the superuser connection, database left to DSN
	external bool
	binDir   string

	// The fields below are unset for an external server.
	dir      string // temporary directory: data directory, socket, log
	dataDir  string
	logPath  string
	runAs    *syscall.Credential // nil unless we are root
	settings map[string]string
	port     int
	procMu   sync.Mutex // proc is replaced by Restart
	proc     *process
	stopOnce sync.Once
}

// Launch starts a throwaway server, or returns the EnvDSN server after
// checking that it runs with wal_level=logical. At most one Options may be
// given. The caller must call Stop.
func Launch(ctx context.Context, opts ...Options) (*Cluster, error) {
	var o Options
	switch len(opts) {
	case 0:
	case 1:
		o = opts[0]
	default:
		return nil, errors.New("pgtest: Launch takes at most one Options")
	}
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		if len(o.Settings) > 0 {
			return nil, ErrExternalServer
		}
		return useExternal(ctx, dsn)
	}
	return launchLocal(ctx, o.Settings)
}

func useExternal(ctx context.Context, dsn string) (*Cluster, error) {
	cs, err := parseConnString(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %s: %w", EnvDSN, err)
	}
	// The DSN is not quoted in errors: it may carry a password.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("pgtest: connect to the %s server: %w", EnvDSN, err)
	}
	defer conn.Close(ctx)
	var level string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		return nil, fmt.Errorf("pgtest: read wal_level of the %s server: %w", EnvDSN, err)
	}
	if level != "logical" {
		return nil, fmt.Errorf("pgtest: the %s server runs with wal_level=%s, but logical replication needs wal_level=logical: set it in postgresql.conf and restart that server, or unset %s to let the tests start their own", EnvDSN, level, EnvDSN)
	}
	// Local client binaries only matter to benchmarks, so a machine that
	// has none can still run the tests against a remote server.
	binDir, _ := findBinDir()
	return &Cluster{conn: cs, external: true, binDir: binDir}, nil
}

func launchLocal(ctx context.Context, overrides map[string]string) (_ *Cluster, err error) {
	settings := defaultSettings()
	for name, value := range overrides {
		if slices.Contains(managedSettings, name) {
			return nil, fmt.Errorf("pgtest: setting %s is chosen by pgtest and cannot be overridden", name)
		}
		settings[name] = value
	}
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	runAs, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{
		binDir:  binDir,
		dir:     dir,
		dataDir: filepath.Join(dir, "data"),
		logPath: filepath.Join(dir, "postgres.log"),
		runAs:   runAs,
	}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	if runAs != nil {
		if err := os.Chown(dir, int(runAs.Uid), int(runAs.Gid)); err != nil {
			return nil, fmt.Errorf("pgtest: hand the temporary directory to the postgres user: %w", err)
		}
	}
	if err := c.initdb(ctx); err != nil {
		return nil, err
	}
	c.settings = settings
	for attempt := 1; ; attempt++ {
		err := c.start(ctx)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == portAttempts {
			return nil, err
		}
	}
}

// serverCredential says whom to run initdb and postgres as: ourselves, or,
// since both refuse to run as root, the postgres user when we are root.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, and PostgreSQL refuses to run as root, but there is no postgres user to run it as (%v); run scripts/ensure-postgres.sh", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: postgres user: uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: postgres user: gid %q: %w", u.Gid, err)
	}
	// Groups is left empty so that root's supplementary groups are dropped.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// findBinDir finds a directory holding both initdb and postgres: on PATH
// first, so a developer's own build wins, then Debian's per-version
// directories, preferring the version the replicator is built against.
func findBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		// An initdb symlinked onto PATH leads to the directory that holds
		// the other programs too (pg_recvlogical, pgbench, ...).
		if real, err := filepath.EvalSymlinks(p); err == nil && isServerBinDir(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if isServerBinDir(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	best, bestVersion := "", -1
	dirs, _ := filepath.Glob(filepath.Join(debianRoot, "*", "bin"))
	for _, dir := range dirs {
		if !isServerBinDir(dir) {
			continue
		}
		// Pre-10 versions are named like 9.6; they sort below any real one.
		version, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		if version == preferredVersion {
			return dir, nil
		}
		if version > bestVersion {
			best, bestVersion = dir, version
		}
	}
	if best == "" {
		return "", fmt.Errorf("pgtest: no PostgreSQL server binaries (initdb and postgres) on PATH or in %s/*/bin: run scripts/ensure-postgres.sh, or set %s to use an existing server", debianRoot, EnvDSN)
	}
	return best, nil
}

func isServerBinDir(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// prepare makes cmd run as the server's user, from a directory that user
// can read: postgres and initdb fail to resolve their own path when the
// working directory is not accessible to them.
func (c *Cluster) prepare(cmd *exec.Cmd) {
	cmd.Dir = c.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.runAs}
}

func (c *Cluster) initdb(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, "initdb"),
		"-D", c.dataDir, "-A", "trust", "-U", "postgres", "--no-sync",
		"-E", "UTF8", "--locale=C")
	c.prepare(cmd)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, tail(out))
	}
	return nil
}

// errPortInUse marks a start that lost its port to another process.
var errPortInUse = errors.New("port already in use")

// start runs postgres on a fresh free port and waits until it accepts
// connections.
func (c *Cluster) start(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	c.port = port
	c.conn = connString{url: &url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		RawQuery: "sslmode=disable",
	}}
	// Truncated per attempt so that errors show only this attempt's log.
	return c.run(ctx, port, os.O_TRUNC)
}

// run starts postgres on port; logFlag is os.O_TRUNC or os.O_APPEND.
func (c *Cluster) run(ctx context.Context, port, logFlag int) error {
	settings := c.settings
	logFile, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|logFlag, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logFile.Close() // postgres keeps its own descriptor
	args := []string{
		"-D", c.dataDir,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + c.dir,
	}
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		args = append(args, "-c", name+"="+settings[name])
	}
	cmd := exec.Command(filepath.Join(c.binDir, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	c.prepare(cmd)
	// Kill the server when the test binary dies without calling Stop.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	p, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	c.procMu.Lock()
	c.proc = p
	c.procMu.Unlock()
	return c.waitReady(ctx)
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before postgres binds it; start then fails with errPortInUse and
// is retried.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		select {
		case <-c.proc.Done():
			log := c.logTail()
			if strings.Contains(log, "Address already in use") {
				return errPortInUse
			}
			return fmt.Errorf("pgtest: postgres exited during startup (%v)\n%s", c.proc.Err(), log)
		default:
		}
		err := c.ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres not ready: %w (last attempt: %v)\n%s", ctx.Err(), err, c.logTail())
		case <-c.proc.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ping connects once and checks that the server answering is ours: until
// our postgres fails to bind a port someone else took, the other process
// may be what answers there.
func (c *Cluster) ping(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var dataDir string
	if err := conn.QueryRow(ctx, "SHOW data_directory").Scan(&dataDir); err != nil {
		return err
	}
	if filepath.Clean(dataDir) != filepath.Clean(c.dataDir) {
		return fmt.Errorf("another server (data directory %s) answers on our port", dataDir)
	}
	return nil
}

func (c *Cluster) logTail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	return tail(b)
}

// tail keeps the end of a log, where the reason for a failure is.
func tail(b []byte) string {
	const limit = 4096
	if len(b) > limit {
		b = b[len(b)-limit:]
		if i := strings.IndexByte(string(b), '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// process is a started server and the outcome of waiting for it.
type process struct{ *childproc.Process }

// startProcess starts cmd from a thread of its own (see childproc): the
// server has a parent-death signal.
func startProcess(cmd *exec.Cmd) (*process, error) {
	p, err := childproc.Start(cmd)
	if err != nil {
		return nil, err
	}
	return &process{p}, nil
}

// stop shuts the server down with SIGQUIT, PostgreSQL's immediate shutdown:
// it skips the shutdown checkpoint, which nothing needs because the data
// directory is deleted next. SIGKILL follows if that hangs.
func (p *process) stop() error {
	for _, sig := range []os.Signal{syscall.SIGQUIT, os.Kill} {
		// An error means the process is already gone, which done shows.
		_ = p.Cmd.Process.Signal(sig)
		select {
		case <-p.Done():
			return nil
		case <-time.After(stopTimeout):
		}
	}
	return fmt.Errorf("postgres (pid %d) still running after SIGKILL", p.Cmd.Process.Pid)
}

// Stop shuts down and deletes a server Launch started; for the EnvDSN
// server it does nothing. It may be called more than once. Failures are
// written to stderr, since Stop runs from TestMain or test cleanup where
// nothing could act on an error, yet a leftover server or directory should
// show in the test log.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		if c.external {
			return
		}
		var errs []error
		c.procMu.Lock()
		if c.proc != nil {
			errs = append(errs, c.proc.stop())
		}
		c.procMu.Unlock()
		errs = append(errs, os.RemoveAll(c.dir))
		if err := errors.Join(errs...); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stop: %v\n", err)
		}
	})
}

// BinDir returns the directory of the PostgreSQL programs (pg_recvlogical,
// pgbench, ...). For the EnvDSN server it is "" when none are installed
// locally.
func (c *Cluster) BinDir() string {
	return c.binDir
}

// LogPath returns the server log of a server Launch started; "" for the
// EnvDSN server.
func (c *Cluster) LogPath() string {
	return c.logPath
}

// DSN returns a connection string for database db as the superuser
// (postgres on a server Launch started, the EnvDSN user otherwise).
func (c *Cluster) DSN(db string) string {
	return c.conn.with(db, "", "")
}

// CreateDatabase creates database name and returns its DSN. Databases are
// independent, so tests that each use their own can run in parallel.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (string, error) {
	if err := c.exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return c.DSN(name), nil
}

// CreateRole creates a login role, with the REPLICATION attribute or
// explicitly without it, and returns a DSN that logs in as it to the
// postgres database; WithDatabase points it at another. Roles are shared by
// all databases of a server, so names must not collide across tests.
func (c *Cluster) CreateRole(ctx context.Context, name string, replication bool) (string, error) {
	attr := "NOREPLICATION"
	if replication {
		attr = "REPLICATION"
	}
	// A password lets the role log in to an EnvDSN server that does not
	// trust local connections; rand.Text needs no quoting in a literal.
	password := rand.Text()
	sql := fmt.Sprintf("CREATE ROLE %s LOGIN %s PASSWORD '%s'", pgx.Identifier{name}.Sanitize(), attr, password)
	if err := c.exec(ctx, sql); err != nil {
		return "", fmt.Errorf("pgtest: create role %s: %w", name, err)
	}
	return c.conn.with("postgres", name, password), nil
}

// exec runs one statement as the superuser.
func (c *Cluster) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// WithDatabase returns dsn, a URL or keyword/value connection string,
// pointed at database db.
func WithDatabase(dsn, db string) (string, error) {
	cs, err := parseConnString(dsn)
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	return cs.with(db, "", ""), nil
}

// connString is a connection string in either of libpq's forms, parsed once
// so that rewriting it for another database or role cannot fail later.
type connString struct {
	url *url.URL // for postgres:// and postgresql:// URLs
	kv  string   // otherwise, keyword/value pairs
}

func parseConnString(s string) (connString, error) {
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		u, err := url.Parse(s)
		if err != nil {
			// url's error repeats the string, which may hold a password.
			return connString{}, errors.New("connection URL does not parse")
		}
		return connString{url: u}, nil
	}
	return connString{kv: s}, nil
}

// with returns the connection string for database db, logging in as user
// with password unless user is "".
func (cs connString) with(db, user, password string) string {
	if cs.url == nil {
		// libpq and pgx both let a later keyword override an earlier one.
		s := cs.kv + " dbname=" + quoteValue(db)
		if user != "" {
			s += " user=" + quoteValue(user) + " password=" + quoteValue(password)
		}
		return strings.TrimSpace(s)
	}
	u := *cs.url
	u.Path, u.RawPath = "/"+db, ""
	// Query parameters override the path and user info, so drop any that
	// would undo the rewrite.
	q := u.Query()
	q.Del("dbname")
	if user != "" {
		u.User = url.UserPassword(user, password)
		q.Del("user")
		q.Del("password")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// quoteValue quotes a keyword/value connection string value.
func quoteValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// Restart shuts a server Launch started down and starts it again on the same
// port and data directory, as a database restart does under a running
// client. mode is "fast" (clients are told, and the shutdown checkpoint
// is written) or "immediate" (the server stops at once and recovers from
// the WAL on start).
func (c *Cluster) Restart(ctx context.Context, mode string) error {
	if err := c.Shutdown(mode); err != nil {
		return err
	}
	return c.StartAgain(ctx)
}

// Shutdown stops a server Launch started, "fast" or "immediate" (see
// Restart), leaving its data directory for StartAgain: clients find the
// server down meanwhile.
func (c *Cluster) Shutdown(mode string) error {
	if c.external {
		return fmt.Errorf("pgtest: cannot stop the %s server", EnvDSN)
	}
	sig := map[string]os.Signal{"fast": syscall.SIGINT, "immediate": syscall.SIGQUIT}[mode]
	if sig == nil {
		return fmt.Errorf("pgtest: shutdown mode %q: want fast or immediate", mode)
	}
	c.procMu.Lock()
	proc := c.proc
	c.procMu.Unlock()
	// A fast shutdown waits until each logical walsender's client confirmed
	// all WAL sent, which a client confirming only what it has written
	// elsewhere may hold up until wal_sender_timeout.
	timeout := stopTimeout
	if mode == "fast" {
		timeout += 90 * time.Second
	}
	_ = proc.Cmd.Process.Signal(sig)
	select {
	case <-proc.Done():
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("pgtest: postgres (pid %d) did not stop within %v after a %s shutdown", proc.Cmd.Process.Pid, timeout, mode)
	}
}

// StartAgain starts a server Shutdown stopped, on the same port and data
// directory.
func (c *Cluster) StartAgain(ctx context.Context) error {
	if c.external {
		return fmt.Errorf("pgtest: cannot start the %s server", EnvDSN)
	}
	// The port is ours until another process happens to take it while the
	// server is down; a short wait gives such a process time to let go.
	for attempt := 1; ; attempt++ {
		err := c.run(ctx, c.port, os.O_APPEND)
		if err == nil || !errors.Is(err, errPortInUse) || attempt == portAttempts {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
