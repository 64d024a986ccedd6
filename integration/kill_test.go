package integration

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/reader/vpcd"
)

// TestLoadDaemonKilled SIGKILLs `cardd run` at a random moment of a tap with a
// load (the card answers slowly, so the kill lands anywhere from the read to
// after the completion), restarts it and taps again: every credit reaches the
// card exactly once and the host's ledger agrees.
func TestLoadDaemonKilled(t *testing.T) {
	requirePCSC(t)
	n := 40
	if testing.Short() {
		n = 5
	}
	w := newHostWorld(t)
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "host.secret")
	if err := os.WriteFile(secretFile, []byte(w.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"CARDD_HOST_URL=" + w.srv.URL, "CARDD_HOST_SECRET_FILE=" + secretFile,
		"CARDD_STORE_PATH=" + filepath.Join(dir, "cardd.db"), "CARDD_TERMINAL_ID=" + termID,
	}
	const number = "3101000000700001"
	path := w.issue(t, number, 0)
	rng := rand.New(rand.NewPCG(3, 4))
	var sum int64
	for i := range n {
		amount := int64(1 + rng.IntN(900))
		w.credit(t, number, amount)
		sum += amount

		waitEmpty(t, 0)
		d := startDaemon(t, env...)
		d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
		in := insert(t, path, 0, vpcd.Options{Latency: 10 * time.Millisecond})
		time.Sleep(time.Duration(rng.IntN(250)) * time.Millisecond)
		_ = d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.exit
		in.remove(t)

		waitEmpty(t, 0)
		d = startDaemon(t, env...)
		d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
		in = insert(t, path, 0, vpcd.Options{})
		d.waitLine(t, "tap after restart", 15*time.Second, isTap("ok"))
		in.remove(t)
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		if err := <-d.exit; err != nil {
			t.Fatalf("round %d: cardd exited with %v after SIGTERM", i, err)
		}

		f, err := epurse.LoadCardFile(path)
		if err != nil {
			t.Fatal(err)
		}
		l, err := w.host.Ledger(context.Background(), number)
		if err != nil {
			t.Fatal(err)
		}
		if f.EPBalance != sum || l.LoadedFen != sum || l.PendingFen != 0 || l.Alarms != 0 {
			t.Fatalf("round %d: card %d, host loaded %d pending %d alarms %d; want %d once", i, f.EPBalance, l.LoadedFen, l.PendingFen, l.Alarms, sum)
		}
	}
	// The terminal's whole configuration (environment and secret file) and
	// its store hold no issuer key.
	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, []byte(strings.Join(env, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "cardd.db")
	assertNoKeys(t, w.hostDir, []string{path}, envFile, secretFile, db, db+"-wal", db+"-shm")
}
