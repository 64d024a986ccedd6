package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/reader/vpcd"
)

// TestChipBlockThroughServe is item 2's "the lost card tapped again is
// blocked on the card and stays refused", through pcscd, `cardd run` and
// `cardhost serve`: a card reported lost (cardhost deny add) is tapped at
// terminal A, which pulled the deny list: A blocks its e-purse on the chip
// with the host's MAC, and the host's ledger records it. Tapped at terminal
// B, a fresh terminal whose host is out of reach and which never pulled
// the list, it is refused as blocked, and its money stays on it.
func TestChipBlockThroughServe(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	const number = "3101000000990017"
	path := w.issue(t, number, 8320)
	cardhostCLI(t, w.hostDir, "deny", "add", "--card", number, "--reason", "lost")
	base := startServe(t, w.hostDir)

	dirA := t.TempDir()
	storeA := filepath.Join(dirA, "cardd.db")
	waitEmpty(t, 0)
	a := startDaemon(t, "CARDD_HOST_URL="+base, "CARDD_HOST_SECRET_FILE="+w.secretFile(t, dirA),
		"CARDD_STORE_PATH="+storeA, "CARDD_TERMINAL_ID="+termID)
	a.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
	waitDenied(t, storeA, number, "", 10*time.Second)

	in := insert(t, path, 0, vpcd.Options{})
	blocked := a.waitLine(t, "the block on the chip", 15*time.Second, func(m map[string]any) bool {
		return strings.HasPrefix(fmt.Sprint(m["msg"]), "deny-listed card blocked on the chip")
	})
	m := a.waitLine(t, "the tap at terminal A", 15*time.Second, isTap("application_blocked"))
	in.remove(t)
	if c := fmt.Sprint(blocked["card"]); strings.Contains(c, number) || !strings.HasPrefix(c, number[:4]) {
		t.Errorf("the block's log names card %q, want it masked", c)
	}
	if !strings.Contains(fmt.Sprint(m["err"]), "card blocked") {
		t.Errorf("terminal A's tap: %v", m)
	}
	f, err := epursesim.LoadCardFile(path)
	if err != nil || !f.Blocked || f.EPBalance != 8320 {
		t.Fatalf("card after terminal A: blocked %v, balance %d (%v); want blocked, 8320", f.Blocked, f.EPBalance, err)
	}
	if l := cardhostCLI(t, w.hostDir, "ledger", "--card", number); !strings.Contains(l, "chip_block") || !strings.Contains(l, "terminal "+termID) {
		t.Errorf("the host's ledger lacks the chip block by terminal %s:\n%s", termID, l)
	}
	a.stop(t, 10*time.Second)

	// Terminal B: its own journal, no deny list, the host out of reach.
	dirB := t.TempDir()
	b := startDaemon(t, "CARDD_HOST_URL=http://127.0.0.1:1", "CARDD_HOST_SECRET_FILE="+w.secretFile(t, dirB),
		"CARDD_STORE_PATH="+filepath.Join(dirB, "cardd.db"), "CARDD_TERMINAL_ID=000000000002")
	b.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
	in = insert(t, path, 0, vpcd.Options{})
	m = b.waitLine(t, "the tap at terminal B", 15*time.Second, isTap("application_blocked"))
	in.remove(t)
	if !strings.Contains(fmt.Sprint(m["err"]), "blocked") {
		t.Errorf("terminal B's tap gives no reason: %v", m)
	}
	if f, err := epursesim.LoadCardFile(path); err != nil || !f.Blocked || f.EPBalance != 8320 {
		t.Fatalf("card after terminal B: %+v (%v)", f, err)
	}
	b.stop(t, 10*time.Second)
}

// waitDenied waits, bounded, until the terminal's store at path has card
// on its deny list, with reason when it is not "".
func waitDenied(t testing.TB, path, card, reason string, limit time.Duration) {
	t.Helper()
	db := sqlOpen(t, path)
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		var got string
		err := db.QueryRow(`SELECT reason FROM deny WHERE card = ?`, card).Scan(&got)
		if err == nil && (reason == "" || got == reason) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("card %s not on the terminal's deny list (reason %q) within %v (%q, %v)", card, reason, limit, got, err)
		}
	}
}
