package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardd/cardd/reader/vpcd"
)

// daemon is a running `cardd run` with its JSON log lines.
type daemon struct {
	cmd   *exec.Cmd
	lines chan map[string]any
	exit  chan error
}

// startDaemon runs the cardd binary in kiosk mode on slot 0 with a JSON log.
func startDaemon(t testing.TB, env ...string) *daemon {
	t.Helper()
	cmd := exec.Command(binary(t, "cardd"), "run", "--log-format", "json", "--log-level", "debug")
	// Any free port for the local API: a daemon of the demo or of an
	// earlier test must not make this one fail to start.
	cmd.Env = append(append(os.Environ(), "CARDD_READER_CARD_PATTERN=^Virtual PCD 00 00$", "CARDD_CONFIG=", "CARDD_API_LISTEN=127.0.0.1:0"), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, lines: make(chan map[string]any, 256), exit: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = map[string]any{"msg": "unparsed", "line": sc.Text()}
			}
			t.Logf("cardd: %s", sc.Text())
			d.lines <- m
		}
		close(d.lines)
		d.exit <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	return d
}

// waitLine returns the first log line for which match is true.
func (d *daemon) waitLine(t testing.TB, what string, limit time.Duration, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case m, ok := <-d.lines:
			if !ok {
				t.Fatalf("cardd exited while waiting for %s", what)
			}
			if match(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s from cardd within %v", what, limit)
		}
	}
}

// stop sends SIGTERM and waits up to limit for cardd to exit 0.
func (d *daemon) stop(t testing.TB, limit time.Duration) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.exit:
		if err != nil {
			t.Fatalf("cardd exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(limit):
		t.Fatalf("cardd did not stop within %v of SIGTERM", limit)
	}
}

func isTap(outcome string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["msg"] == "tap" && m["outcome"] == outcome }
}

// privatePCSCD names the environment variable that holds the pid of the
// pcscd a test may stop: scripts/isolated sets it to the pcscd it started
// in its private namespace, and restartPCSCD to the one it starts instead.
const privatePCSCD = "CARDD_PCSCD_PID"

// ownPCSCD is the pid of the test's private pcscd (privatePCSCD), which it
// may stop. Any other pcscd, even one found by its name, could be a
// developer's serving a real reader: without privatePCSCD (not run inside
// scripts/isolated) the test fails under CI and is skipped otherwise, before
// it has done anything.
func ownPCSCD(t *testing.T) int {
	t.Helper()
	refuse := t.Skip
	if os.Getenv("CI") == "true" {
		refuse = t.Fatal
	}
	if os.Geteuid() != 0 {
		refuse("restarting pcscd needs root")
	}
	pid, err := strconv.Atoi(os.Getenv(privatePCSCD))
	if err != nil || pid <= 1 {
		refuse("restarting pcscd needs a pcscd of the test's own (" + privatePCSCD + "): run it inside scripts/isolated")
	}
	return pid
}

// restartPCSCD stops the test's private pcscd, pid from ownPCSCD, and
// starts a new one, as an operator's `systemctl restart pcscd` or a package
// upgrade would.
func restartPCSCD(t *testing.T, pid int) {
	t.Helper()
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err != nil || strings.TrimSpace(string(comm)) != "pcscd" {
		t.Fatalf("%s=%d is not a running pcscd (%q, %v)", privatePCSCD, pid, comm, err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stopping pcscd %d: %v", pid, err)
	}
	// Gone, or a zombie its parent has not reaped (scripts/isolated's
	// command is its parent, and need not reap it): it has let go of its
	// socket either way.
	for i := 0; ; i++ {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || processState(stat) == "Z" {
			break
		}
		if i == 100 {
			t.Fatalf("pcscd %d did not stop within 10 s", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// In the foreground, a child of this process, so that its pid is known
	// for the next restart; it outlives the test for the tests after it,
	// and the namespace's end stops it.
	cmd := exec.Command("pcscd", "--foreground")
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting pcscd: %v", err)
	}
	go cmd.Wait() // reaps it whenever it ends
	os.Setenv(privatePCSCD, strconv.Itoa(cmd.Process.Pid))
	if _, err := waitReaders(10 * time.Second); err != nil {
		t.Fatalf("pcscd did not come back: %v", err)
	}
}

// processState is the state letter of a /proc/<pid>/stat line: the field
// after the command name, which is in parentheses and may hold spaces.
func processState(stat []byte) string {
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+3 > len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// TestDaemonSurvivesPCSCDRestart: `cardd run` reads a tap, pcscd is
// restarted under it (its readers vanish and come back), and the next tap is
// read by the same process; SIGTERM then stops it cleanly.
func TestDaemonSurvivesPCSCDRestart(t *testing.T) {
	requirePCSC(t)
	pcscd := ownPCSCD(t)
	f, path := newCardFile(t, "3101000000777777", "王五", 8800, 6)
	waitEmpty(t, 0)
	d := startDaemon(t)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool {
		return m["event"] == "reader-added" && m["reader"] == slot0Reader
	})

	in := insert(t, path, 0, vpcd.Options{})
	first := d.waitLine(t, "first tap", 15*time.Second, isTap("ok"))
	if first["balance"] != "88.00" && f.EPBalance == 8800 {
		t.Errorf("first tap balance %v, want 88.00", first["balance"])
	}
	if first["card"] != "3101********7777" {
		t.Errorf("card logged as %v, want it masked as 3101********7777", first["card"])
	}
	in.remove(t)

	restartPCSCD(t, pcscd)
	d.waitLine(t, "pcscd connection lost", 15*time.Second, func(m map[string]any) bool { return m["event"] == "service-lost" })
	d.waitLine(t, "reader back", 30*time.Second, func(m map[string]any) bool {
		return m["event"] == "reader-added" && m["reader"] == slot0Reader
	})

	insert(t, path, 0, vpcd.Options{})
	second := d.waitLine(t, "tap after pcscd restart", 15*time.Second, isTap("ok"))
	if second["card"] != first["card"] || second["balance"] != first["balance"] {
		t.Errorf("tap after restart read %v/%v, before %v/%v", second["card"], second["balance"], first["card"], first["balance"])
	}

	d.stop(t, 10*time.Second)
	for m := range d.lines {
		if s, _ := m["line"].(string); strings.Contains(s, "panic") {
			t.Errorf("cardd panicked: %s", s)
		}
	}
}
