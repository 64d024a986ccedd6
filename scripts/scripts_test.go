// Package scripts tests the shell libraries of the scripts beside it.
package scripts

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestBenchGoesOnAfterAFailure: scripts/bench once ended at the first
// benchmark that failed (its output captured under set -e), and the figures
// of the ones after it never printed. A failure is now printed, the next
// benchmark still runs, and the run exits 1 naming the failures.
func TestBenchGoesOnAfterAFailure(t *testing.T) {
	cmd := exec.Command("bash", "-c", `set -euo pipefail
cd ..
. scripts/lib.sh
. scripts/benchlib.sh
bench BenchmarkFails ./scripts/testdata/bench 1x 2m
bench BenchmarkPasses ./scripts/testdata/bench 1x 2m
step upload false
bench_done
echo "not reached"`)
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{
		"this benchmark fails on purpose",
		"FAILED: BenchmarkFails",
		"BenchmarkPasses",
		"figures",
		"FAILED: upload (exit 1)",
		"failed: BenchmarkFails upload",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "not reached") {
		t.Errorf("bench_done did not exit:\n%s", out)
	}
}

// requirePostgres skips a test without PostgreSQL's server binaries, or
// fails it under CI=true, where scripts/setup installs them.
func requirePostgres(t *testing.T) {
	t.Helper()
	if err := exec.Command("bash", "-c", "cd .. && . scripts/lib.sh && pg_bindir").Run(); err != nil {
		msg := "no PostgreSQL server binaries (pg_bindir): run scripts/setup"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// lineValue returns what follows "key=" on a line of out.
func lineValue(t *testing.T, out []byte, key string) string {
	t.Helper()
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return v
		}
	}
	t.Fatalf("output lacks %s=:\n%s", key, out)
	return ""
}

// TestPgStartStop: pg_start's cluster answers its superuser on loopback
// with the password only and on its socket, which no other local user
// reaches (a kiosk's other accounts); pg_stop ends the server and removes
// its directory.
func TestPgStartStop(t *testing.T) {
	requirePostgres(t)
	cmd := exec.Command("bash", "-c", `set -euo pipefail
cd ..
. scripts/lib.sh
pg_start fsync=off
echo "DIR=$PG_DIR"
echo "PID=$(head -1 "$PG_DIR/data/postmaster.pid")"
echo "TCP=$("$PG_BIN/psql" -X -At "$PG_URL" -c 'SELECT 7*6')"
echo "SOCKET=$("$PG_BIN/psql" -X -At "$PG_SOCKET_URL" -c "SELECT setting FROM pg_settings WHERE name = 'fsync'")"
if PGCONNECT_TIMEOUT=10 "$PG_BIN/psql" -X "postgres://postgres:wrong@127.0.0.1:$PG_PORT/postgres?sslmode=disable" -c 'SELECT 1' 2>&1; then
  echo "WRONGPASSWORD=accepted"
else
  echo "WRONGPASSWORD=refused"
fi
echo "MODES=$(stat -c %a "$PG_DIR" "$PG_DIR/sock" | paste -sd,)"
if [ "$(id -u)" -eq 0 ]; then
  if runuser -u nobody -- "$PG_BIN/psql" -X "$PG_SOCKET_URL" -c 'SELECT 1' 2>&1; then
    echo "OTHERUSER=connected"
  else
    echo "OTHERUSER=refused"
  fi
fi
pg_stop
pg_stop`)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("%s", out)
	for key, want := range map[string]string{"TCP": "42", "SOCKET": "off", "WRONGPASSWORD": "refused", "MODES": "700,700"} {
		if got := lineValue(t, out, key); got != want {
			t.Errorf("%s=%s, want %s", key, got, want)
		}
	}
	if os.Geteuid() == 0 {
		if got := lineValue(t, out, "OTHERUSER"); got != "refused" {
			t.Errorf("another local user on the socket: %s, want refused", got)
		}
	}
	if !strings.Contains(string(out), "password authentication failed") {
		t.Errorf("the wrong password was not refused for being wrong:\n%s", out)
	}
	dir := lineValue(t, out, "DIR")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s after pg_stop: %v, want it removed", dir, err)
	}
	if pid := lineValue(t, out, "PID"); running(pid) {
		t.Errorf("postmaster %s still there after pg_stop", pid)
	}
}

// TestPgStopAsTrapOnFailure: a script whose command fails after pg_start
// (scripts/test when a test fails) still stops and removes the cluster
// through its EXIT trap, and keeps the command's exit status.
func TestPgStopAsTrapOnFailure(t *testing.T) {
	requirePostgres(t)
	cmd := exec.Command("bash", "-c", `set -euo pipefail
cd ..
. scripts/lib.sh
trap pg_stop EXIT
pg_start
echo "DIR=$PG_DIR"
echo "PID=$(head -1 "$PG_DIR/data/postmaster.pid")"
exit 3`)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("exit: %v, want exit status 3\n%s", err, out)
	}
	if dir := lineValue(t, out, "DIR"); dirExists(dir) {
		t.Errorf("%s outlived the script", dir)
	}
	if pid := lineValue(t, out, "PID"); running(pid) {
		t.Errorf("postmaster %s outlived the script", pid)
	}
}

func dirExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// running reports whether process pid runs. A zombie does not: pg_ctl
// starts the server as a daemon, whose parent, once it has exited, may be
// an init that never reaps.
func running(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}
