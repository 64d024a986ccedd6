package integration

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/printer/sim"
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
	secretFile := w.secretFile(t, dir)
	// With the printer on, so a kill can also land between the load's
	// journal row and its receipt, or in the middle of printing it.
	link := filepath.Join(dir, "printer")
	p := openPrinter(t, link, sim.Options{})
	env := append([]string{
		"CARDD_HOST_URL=" + w.srv.URL, "CARDD_HOST_SECRET_FILE=" + secretFile,
		"CARDD_STORE_PATH=" + filepath.Join(dir, "cardd.db"), "CARDD_TERMINAL_ID=" + termID,
	}, printerEnv(link)...)
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
		in.removeAfterKill(t, 0)

		d = startDaemon(t, env...)
		d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
		in = insert(t, path, 0, vpcd.Options{})
		d.waitLine(t, "tap after restart", 15*time.Second, isTap("ok"))
		in.remove(t)
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		if err := <-d.exit; err != nil {
			t.Fatalf("round %d: cardd exited with %v after SIGTERM", i, err)
		}

		f, err := epursesim.LoadCardFile(path)
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
	// Each load has exactly one receipt queued with it, and none is on paper
	// twice (one being printed at a kill is left unprinted, never resent).
	store := sqlOpen(t, filepath.Join(dir, "cardd.db"))
	var loads, receipts int
	if err := store.QueryRow(`SELECT (SELECT count(*) FROM journal WHERE kind = 'load' AND state = 'done'),
		(SELECT count(*) FROM receipts WHERE copy = 0)`).Scan(&loads, &receipts); err != nil {
		t.Fatal(err)
	}
	if loads != n || receipts != n {
		t.Errorf("%d loads done and %d receipts queued in the journal, want %d of each", loads, receipts, n)
	}
	seen := map[string]bool{}
	for _, r := range p.Receipts() {
		if seen[r.Text()] {
			t.Errorf("receipt printed twice:\n%s", r.Text())
		}
		seen[r.Text()] = true
	}
	var states string
	if err := store.QueryRow(`SELECT group_concat(state || ' ' || n, ', ') FROM (SELECT state, count(*) AS n FROM receipts GROUP BY state)`).Scan(&states); err != nil {
		t.Fatal(err)
	}
	// Not printed yet is queued (the last run was stopped before the worker's
	// next look) or unknown (killed while writing it: may be on paper).
	t.Logf("%d loads, %d receipts (%s), %d on paper", loads, receipts, states, len(p.Receipts()))
	// The terminal's whole configuration (environment and secret file) and
	// its store hold no issuer key.
	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, []byte(strings.Join(env, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "cardd.db")
	assertNoKeys(t, w.hostDir, []string{path}, envFile, secretFile, db, db+"-wal", db+"-shm")
}

// sqlOpen opens an SQLite file read-only for checks.
func sqlOpen(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
