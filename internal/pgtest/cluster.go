//go:build linux

package pgtest

import (
	"context"
	"errors"
	"fmt"
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
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrRunning is returned by Start when the cluster's server already runs.
var ErrRunning = errors.New("pgtest: the cluster is running")

// ErrNotRunning is returned by Stop and Kill when the cluster's server is
// not running.
var ErrNotRunning = errors.New("pgtest: the cluster is not running")

// socketPort names the socket file (.s.PGSQL.5432). The cluster listens on
// no TCP port, so no other server can hold it.
const socketPort = 5432

// Cluster is one test's own PostgreSQL cluster. It listens on a unix socket
// only, in a directory that no user but the cluster's (and root) may enter,
// with its superuser postgres trusted there. Its methods may be called from
// any goroutine, such as a fault injector's beside the test's load.
type Cluster struct {
	bin  string              // the directory of initdb and postgres
	dir  string              // data/, sock/ and postgres.log
	cred *syscall.Credential // the cluster's user; nil: the test's own

	mu   sync.Mutex
	proc *postmaster // nil while the server is not running
}

// postmaster is one run of the server's main process.
type postmaster struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait has returned
}

// NewCluster initdbs and starts a cluster for this test alone, stopped and
// removed when the test ends. It is for tests that stop, restart or crash
// PostgreSQL; a test that only needs a database takes URL. A test running
// as root gets a cluster run by the postgres user, since PostgreSQL refuses
// to run as root. Without PostgreSQL's server binaries the test is skipped,
// or fails under CI=true.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	bin, err := binDir()
	if err != nil {
		unavailable(t, err.Error())
	}
	cred, err := clusterUser()
	if err != nil {
		unavailable(t, err.Error())
	}
	// Not t.TempDir: its long name would overflow a unix socket's path
	// (107 bytes), and its parent is one only the test's user may enter.
	dir, err := os.MkdirTemp("", "pgtest")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	c := &Cluster{bin: bin, dir: dir, cred: cred}
	if err := c.initdb(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.close(t) })
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// URL returns the URL of the cluster's superuser, postgres, on its socket,
// with the database named postgres. It stays the same across restarts.
func (c *Cluster) URL() string {
	// pgx decodes a URL as libpq does: %20 is a space, '+' is a '+'.
	host := strings.ReplaceAll(url.QueryEscape(c.sockDir()), "+", "%20")
	return "postgres://postgres@/postgres?host=" + host + "&port=" + strconv.Itoa(socketPort)
}

// Start starts the server and returns once it takes connections. After
// Kill, the server first recovers from its write-ahead log, as after a
// crash.
func (c *Cluster) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil {
		return ErrRunning
	}
	log, err := os.OpenFile(c.logPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	cmd := exec.Command(filepath.Join(c.bin, "postgres"), "-D", c.dataDir())
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr = log, log
	// Pdeathsig: a test binary killed at its timeout takes its server
	// with it rather than leave it running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	log.Close()
	if err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	p := &postmaster{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // its status is read from cmd.ProcessState
		close(p.done)
	}()
	if err := c.waitReady(p); err != nil {
		_ = p.crash()
		return err
	}
	c.proc = p
	return nil
}

// Stop shuts the server down fast, as pg_ctl stop -m fast does: open
// transactions are rolled back, clients disconnected, and a checkpoint
// written.
func (c *Cluster) Stop() error {
	p, err := c.take()
	if err != nil {
		return err
	}
	return c.stop(p)
}

// Restart stops the server fast and starts it again.
func (c *Cluster) Restart() error {
	if err := c.Stop(); err != nil {
		return err
	}
	return c.Start()
}

// Kill crashes the server: the postmaster and every process it started get
// SIGKILL at once, as when the machine or container PostgreSQL runs in
// dies (short of the kernel's page cache, which keeps what was written).
// What was committed is in the write-ahead log; Start recovers it.
func (c *Cluster) Kill() error {
	p, err := c.take()
	if err != nil {
		return err
	}
	return p.crash()
}

// take hands over the running server, leaving the cluster stopped.
func (c *Cluster) take() (*postmaster, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.proc
	if p == nil {
		return nil, ErrNotRunning
	}
	c.proc = nil
	return p, nil
}

func (c *Cluster) stop(p *postmaster) error {
	// SIGINT is PostgreSQL's fast shutdown.
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pgtest: stop postgres: %w", err)
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		err := p.crash()
		return fmt.Errorf("pgtest: postgres did not stop within %v, killed (%v)%s", timeout, err, c.logTail())
	}
	if !p.cmd.ProcessState.Success() {
		return fmt.Errorf("pgtest: postgres stopped with %v%s", p.cmd.ProcessState, c.logTail())
	}
	return nil
}

// close stops the server at the test's end and shows the server's log when
// the test failed.
func (c *Cluster) close(t testing.TB) {
	if t.Failed() {
		t.Logf("pgtest: the cluster's log, %s%s", c.logPath(), c.logTail())
	}
	p, err := c.take()
	if err != nil {
		return // stopped or killed by the test
	}
	if err := c.stop(p); err != nil {
		t.Error(err)
	}
}

// waitReady returns once the server takes a connection, or with why not.
func (c *Cluster) waitReady(p *postmaster) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.URL())
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-p.done:
			return fmt.Errorf("pgtest: postgres exited while starting (%v)%s", p.cmd.ProcessState, c.logTail())
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres took no connection within %v: %v%s", timeout, err, c.logTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// crash SIGKILLs the postmaster and its children and waits until they are
// gone. The children too: on its own, a backend in the middle of a long
// query outlives its postmaster until the query ends, and while it holds
// the shared memory a new postmaster refuses to start.
func (p *postmaster) crash() error {
	pid := p.cmd.Process.Pid
	// Through os.Process, which never signals another process that got
	// the pid after this one was reaped. Stopped first, so that it forks
	// no backend between the listing of its children and its death.
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("pgtest: stop postmaster %d: %w", pid, err)
	}
	kids, err := stoppedChildren(pid)
	for _, k := range kids {
		k.kill()
	}
	if kerr := p.cmd.Process.Signal(syscall.SIGKILL); kerr != nil {
		return fmt.Errorf("pgtest: kill postmaster %d: %w", pid, kerr)
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		return fmt.Errorf("pgtest: postmaster %d still there %v after SIGKILL", pid, timeout)
	}
	if err != nil {
		return err
	}
	return waitGone(kids)
}

// stoppedChildren waits until pid has stopped (SIGSTOP is delivered
// asynchronously) and lists its children.
func stoppedChildren(pid int) ([]proc, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := readStat(pid)
		if err != nil {
			return nil, fmt.Errorf("pgtest: postmaster %d: %w", pid, err)
		}
		if st.state == 'T' || st.state == 'Z' { // stopped, or dead already
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("pgtest: postmaster %d not stopped within %v (state %c)", pid, timeout, st.state)
		}
		time.Sleep(time.Millisecond)
	}
	return children(pid)
}

// waitGone waits until every process in kids has exited. A zombie counts
// as exited: it holds no memory, and its new parent may be an init that
// never reaps.
func waitGone(kids []proc) error {
	deadline := time.Now().Add(timeout)
	for {
		left := 0
		for _, k := range kids {
			if k.alive() {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: %d postgres processes still there %v after SIGKILL", left, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// proc names one process; its start time tells it from a later process
// given the same pid.
type proc struct {
	pid   int
	start string
}

// stat is what /proc/PID/stat says of a process that pgtest needs.
type stat struct {
	state byte
	ppid  int
	start string
}

func readStat(pid int) (stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, err
	}
	// pid (comm) state ppid ... with starttime the 22nd field; comm may
	// hold spaces and parentheses, so fields are counted after its last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("/proc/%d/stat: no ')' in %q", pid, s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return stat{}, fmt.Errorf("/proc/%d/stat: %d fields after comm, want 20 or more", pid, len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return stat{}, fmt.Errorf("/proc/%d/stat: ppid %q", pid, f[1])
	}
	return stat{state: f[0][0], ppid: ppid, start: f[19]}, nil
}

// children lists the processes whose parent is ppid.
func children(ppid int) ([]proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	var kids []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue // not a process
		}
		st, err := readStat(pid)
		if err != nil || st.ppid != ppid {
			continue // gone since the listing, or another's
		}
		kids = append(kids, proc{pid: pid, start: st.start})
	}
	return kids, nil
}

// kill SIGKILLs the process unless its pid now names another one.
func (p proc) kill() {
	if p.alive() {
		_ = syscall.Kill(p.pid, syscall.SIGKILL) // gone already: nothing to do
	}
}

// alive reports whether the process still runs: not gone, not a zombie,
// and not replaced by another under its pid.
func (p proc) alive() bool {
	st, err := readStat(p.pid)
	return err == nil && st.start == p.start && st.state != 'Z' && st.state != 'X'
}

// initdb creates the cluster: the data directory and the private socket
// directory, owned by the cluster's user.
func (c *Cluster) initdb() error {
	if err := os.Mkdir(c.sockDir(), 0o700); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if c.cred != nil {
		for _, d := range []string{c.dir, c.sockDir()} {
			if err := os.Chown(d, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
				return fmt.Errorf("pgtest: %w", err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// --no-sync: a test's cluster needs no durability against a power cut;
	// a crash of the server (Kill) loses nothing the kernel has.
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "initdb"), "-D", c.dataDir(),
		"-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
	cmd.Dir = c.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	conf := fmt.Sprintf("\n# pgtest: on the private unix socket only\nlisten_addresses = ''\nunix_socket_directories = '%s'\nport = %d\n",
		strings.ReplaceAll(c.sockDir(), "'", "''"), socketPort)
	f, err := os.OpenFile(filepath.Join(c.dataDir(), "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if _, err := f.WriteString(conf); err != nil {
		f.Close()
		return fmt.Errorf("pgtest: %w", err)
	}
	return f.Close()
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *Cluster) sockDir() string { return filepath.Join(c.dir, "sock") }
func (c *Cluster) logPath() string { return filepath.Join(c.dir, "postgres.log") }

// logTail returns the end of the server's log, to append to an error.
func (c *Cluster) logTail() string {
	b, err := os.ReadFile(c.logPath())
	if err != nil {
		return "; no log: " + err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return "; the end of its log:\n" + strings.Join(lines, "\n")
}

// binDir finds the PostgreSQL server binaries: pg_config's directory when
// it holds initdb (Debian's pg_config comes with libpq-dev, which may be of
// another version than the server, or alone), else the newest
// /usr/lib/postgresql/VERSION/bin that does.
func binDir() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); hasInitdb(d) {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin") // the pattern is valid
	slices.SortFunc(dirs, func(a, b string) int {
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})
	for _, d := range dirs {
		if hasInitdb(d) {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries (initdb, postgres) in pg_config --bindir nor in " +
		"/usr/lib/postgresql/*/bin: run scripts/setup, or apt-get install postgresql")
}

func hasInitdb(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "initdb"))
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// compareVersions orders Debian's PostgreSQL version directories: 9.6,
// 10, 15, 16 (as numbers, not as text).
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

// clusterUser returns whom the cluster runs as: the test's own user, or
// for a test run as root, which PostgreSQL refuses to run as, Debian's
// postgres user.
func clusterUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, which PostgreSQL refuses, and no postgres user to run it as (%v): "+
			"Debian's postgresql package creates it: run scripts/setup", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user's uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user's gid %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
