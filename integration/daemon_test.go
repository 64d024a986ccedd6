package integration

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
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

// restartPCSCD stops the machine's pcscd and starts a new one, as an
// operator's `systemctl restart pcscd` or a package upgrade would.
func restartPCSCD(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("restarting pcscd needs root")
		}
		t.Skip("restarting pcscd needs root")
	}
	if out, err := exec.Command("pkill", "-x", "pcscd").CombinedOutput(); err != nil {
		t.Fatalf("pkill pcscd: %v %s", err, out)
	}
	for i := 0; exec.Command("pgrep", "-x", "pcscd").Run() == nil; i++ {
		if i == 100 {
			t.Fatal("pcscd did not stop within 10 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := exec.Command("pcscd").CombinedOutput(); err != nil {
		t.Fatalf("starting pcscd: %v %s", err, out)
	}
	if _, err := waitReaders(10 * time.Second); err != nil {
		t.Fatalf("pcscd did not come back: %v", err)
	}
}

// TestDaemonSurvivesPCSCDRestart: `cardd run` reads a tap, pcscd is
// restarted under it (its readers vanish and come back), and the next tap is
// read by the same process; SIGTERM then stops it cleanly.
func TestDaemonSurvivesPCSCDRestart(t *testing.T) {
	requirePCSC(t)
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

	restartPCSCD(t)
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
