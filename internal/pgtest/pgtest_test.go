//go:build linux

package pgtest

import (
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func connect(t *testing.T, u string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return c
}

// TestURLGivesEachTestAnEmptyDatabase: two calls give two databases (a
// table made in one is not in the other), and each is dropped when its
// test ends.
func TestURLGivesEachTestAnEmptyDatabase(t *testing.T) {
	var names []string
	t.Run("use", func(t *testing.T) {
		a, b := URL(t), URL(t)
		if a == b {
			t.Fatalf("URL gave %s twice", a)
		}
		ca, cb := connect(t, a), connect(t, b)
		for _, c := range []*pgx.Conn{ca, cb} {
			var name string
			if err := c.QueryRow(ctx(t), "SELECT current_database()").Scan(&name); err != nil {
				t.Fatal(err)
			}
			names = append(names, name)
		}
		if _, err := ca.Exec(ctx(t), "CREATE TABLE credit (id bigint PRIMARY KEY, fen bigint NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		if _, err := ca.Exec(ctx(t), "INSERT INTO credit VALUES (1, 1250)"); err != nil {
			t.Fatal(err)
		}
		var fen int64
		if err := ca.QueryRow(ctx(t), "SELECT fen FROM credit WHERE id = 1").Scan(&fen); err != nil || fen != 1250 {
			t.Fatalf("read back: %d, %v; want 1250", fen, err)
		}
		var tables int
		if err := cb.QueryRow(ctx(t), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil || tables != 0 {
			t.Fatalf("the second database has %d tables (%v), want 0", tables, err)
		}
		// Left open on purpose: the drop must not wait for it.
	})
	if len(names) != 2 {
		if !t.Failed() {
			t.Skip("no PostgreSQL: the subtest says why")
		}
		return
	}
	admin := connect(t, os.Getenv(EnvURL))
	var left int
	if err := admin.QueryRow(ctx(t), "SELECT count(*) FROM pg_database WHERE datname = ANY($1)", names).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d of the databases %v outlived their test", left, names)
	}
}

// TestWithoutPostgres runs a test binary of this package on a test that
// asks for a database with CARDD_TEST_POSTGRES unset: it skips, saying how
// to get one, and under CI=true it fails.
func TestWithoutPostgres(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "1" {
		return
	}
	for _, tc := range []struct {
		ci   string
		fail bool
	}{{"", false}, {"true", true}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestChildAsksForADatabase$", "-test.v", "-test.count=1")
		cmd.Env = append(withoutEnv(EnvURL, "CI"), "PGTEST_CHILD=1", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		switch {
		case tc.fail && !(errors.As(err, &ee) && ee.ExitCode() == 1):
			t.Errorf("CI=%s: %v, want exit status 1\n%s", tc.ci, err, out)
		case !tc.fail && err != nil:
			t.Errorf("CI=%s: %v, want a skip\n%s", tc.ci, err, out)
		}
		want := "--- SKIP: TestChildAsksForADatabase"
		if tc.fail {
			want = "--- FAIL: TestChildAsksForADatabase"
		}
		for _, w := range []string{want, "CARDD_TEST_POSTGRES is not set", "scripts/with-postgres"} {
			if !strings.Contains(string(out), w) {
				t.Errorf("CI=%s: output lacks %q:\n%s", tc.ci, w, out)
			}
		}
		if strings.Contains(string(out), "not reached") {
			t.Errorf("CI=%s: the test went on past URL:\n%s", tc.ci, out)
		}
		t.Logf("CI=%q:\n%s", tc.ci, out)
	}
}

// TestChildAsksForADatabase is TestWithoutPostgres's child.
func TestChildAsksForADatabase(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") != "1" {
		t.Skip("run by TestWithoutPostgres")
	}
	URL(t)
	t.Log("not reached")
}

func withoutEnv(names ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, k) {
			env = append(env, kv)
		}
	}
	return env
}

// TestClusterRestartKeepsData: what was committed is there after a fast
// stop and start, and after Restart; the cluster's socket directory is
// closed to other users.
func TestClusterRestartKeepsData(t *testing.T) {
	c := NewCluster(t)
	for _, d := range []string{c.dir, c.sockDir()} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, want no access for group and others", d, fi.Mode().Perm())
		}
	}
	conn := connect(t, c.URL())
	if _, err := conn.Exec(ctx(t), "CREATE TABLE credit (id bigint PRIMARY KEY, fen bigint NOT NULL); INSERT INTO credit VALUES (1, 1250)"); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); !errors.Is(err, ErrRunning) {
		t.Errorf("Start on a running cluster: %v, want ErrRunning", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Stop on a stopped cluster: %v, want ErrNotRunning", err)
	}
	if err := conn.Ping(ctx(t)); err == nil {
		t.Fatal("a connection survived Stop")
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	checkSum(t, c.URL(), 1250)
	conn = connect(t, c.URL())
	if _, err := conn.Exec(ctx(t), "INSERT INTO credit VALUES (2, 50)"); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	checkSum(t, c.URL(), 1300)
	if !strings.Contains(readLog(t, c), "database system was shut down at") {
		t.Errorf("the log shows no clean shutdown before a start")
	}
}

// TestClusterKillThenStartRecovers: after Kill, with a client connected
// in the middle of a transaction and another in the middle of a long query,
// Start recovers from the write-ahead log: what was committed is there, what
// was not is not.
func TestClusterKillThenStartRecovers(t *testing.T) {
	c := NewCluster(t)
	conn := connect(t, c.URL())
	if _, err := conn.Exec(ctx(t), "CREATE TABLE credit (id bigint PRIMARY KEY, fen bigint NOT NULL); INSERT INTO credit VALUES (1, 1250)"); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx(t), "INSERT INTO credit VALUES (2, 99999)"); err != nil {
		t.Fatal(err)
	}
	// A backend in a query that never waits, so never looks whether its
	// postmaster lives: Kill must not leave it holding the shared memory.
	busy := connect(t, c.URL())
	var busyPID int
	if err := busy.QueryRow(ctx(t), "SELECT pg_backend_pid()").Scan(&busyPID); err != nil {
		t.Fatal(err)
	}
	busyErr := make(chan error, 1)
	go func() {
		_, err := busy.Exec(ctx(t), "SELECT count(*) FROM generate_series(1, 10000000000)")
		busyErr <- err
	}()
	// Watched from outside conn's transaction, which would see
	// pg_stat_activity as it was at its first look.
	watch := connect(t, c.URL())
	for deadline := time.Now().Add(timeout); ; time.Sleep(10 * time.Millisecond) {
		var state string
		err := watch.QueryRow(ctx(t), "SELECT coalesce(state, '') FROM pg_stat_activity WHERE pid = $1", busyPID).Scan(&state)
		if err == nil && state == "active" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the long query is not running: %q, %v", state, err)
		}
	}
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := <-busyErr; err == nil {
		t.Error("the long query finished on a killed server")
	}
	if err := c.Kill(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Kill on a killed cluster: %v, want ErrNotRunning", err)
	}
	if err := tx.Commit(ctx(t)); err == nil {
		t.Fatal("a transaction committed on a killed server")
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	checkSum(t, c.URL(), 1250)
	if log := readLog(t, c); !strings.Contains(log, "was interrupted") && !strings.Contains(log, "automatic recovery in progress") {
		t.Errorf("the log shows no crash recovery:\n%s", log)
	}
	// A second crash right after the recovery, then a clean restart.
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	checkSum(t, c.URL(), 1250)
}

func checkSum(t *testing.T, u string, want int64) {
	t.Helper()
	conn := connect(t, u)
	var sum int64
	if err := conn.QueryRow(ctx(t), "SELECT sum(fen) FROM credit").Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if sum != want {
		t.Errorf("sum: %d fen, want %d", sum, want)
	}
}

func readLog(t *testing.T, c *Cluster) string {
	t.Helper()
	b, err := os.ReadFile(c.logPath())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestClusterURLNamesItsSocket: pgx reads the socket directory from the
// URL's host parameter, even one that needs escaping.
func TestClusterURLNamesItsSocket(t *testing.T) {
	dir := filepath.Join("/var/tmp", "a b&c=d")
	c := &Cluster{dir: dir}
	cfg, err := pgx.ParseConfig(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != filepath.Join(dir, "sock") || cfg.Port != socketPort || cfg.User != "postgres" || cfg.Database != "postgres" {
		t.Errorf("%s: host %q port %d user %q database %q", c.URL(), cfg.Host, cfg.Port, cfg.User, cfg.Database)
	}
	if u, err := url.Parse(c.URL()); err != nil || u.Scheme != "postgres" {
		t.Errorf("%s: %v", c.URL(), err)
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		less bool
	}{{"9.6", "10", true}, {"10", "15", true}, {"15", "9.6", false}, {"16", "15", false}} {
		if got := compareVersions(tc.a, tc.b) < 0; got != tc.less {
			t.Errorf("%s < %s: %v, want %v", tc.a, tc.b, got, tc.less)
		}
	}
}

// TestBinDir finds the server binaries the tests use on this machine.
func TestBinDir(t *testing.T) {
	d, err := binDir()
	if err != nil {
		unavailable(t, err.Error())
	}
	for _, name := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(d, name)); err != nil {
			t.Error(err)
		}
	}
}

// TestWithDatabase: the test's URL is the admin URL with only the database
// changed, for the URL forms scripts/test and people use.
func TestWithDatabase(t *testing.T) {
	for admin, want := range map[string]string{
		"postgres://postgres:s3cr%2Bt@127.0.0.1:25432/postgres?sslmode=disable": "postgres://postgres:s3cr%2Bt@127.0.0.1:25432/db1?sslmode=disable",
		"postgres://postgres@/postgres?host=/var/tmp/a%20b/sock&port=25432":     "postgres://postgres@/db1?host=/var/tmp/a%20b/sock&port=25432",
		"postgresql://u@h1:5432,h2:5433?target_session_attrs=read-write":        "postgresql://u@h1:5432,h2:5433/db1?target_session_attrs=read-write",
		"postgres://u@localhost": "postgres://u@localhost/db1",
	} {
		got, err := withDatabase(admin, "db1")
		if err != nil || got != want {
			t.Errorf("withDatabase(%s) = %s, %v; want %s", admin, got, err, want)
		}
	}
	for _, admin := range []string{
		"postgres://u@localhost/postgres?dbname=postgres",
		"host=localhost user=u dbname=postgres",
	} {
		if got, err := withDatabase(admin, "db1"); err == nil {
			t.Errorf("withDatabase(%s) = %s, want an error", admin, got)
		}
	}
}
