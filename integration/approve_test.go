package integration

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/reader/vpcd"
)

// TestApprovalThroughServe is item 5's must-show through pcscd, `cardd
// run` and `cardhost serve`: with `cardhost credit threshold --above
// 2000.00`, a 2,500.00 credit that operator alice adds is not loaded on a
// tap (a 10.00 credit added with it is); alice's own approval is refused,
// exit 2, and the card's next tap still does not load it; once bob
// approves it, it reaches the terminal and is loaded exactly once. Loaded,
// it can only be corrected in the ledger, not cancelled.
func TestApprovalThroughServe(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	const number = "3101000000990005"
	path := w.issue(t, number, 10000)
	cardhostCLI(t, w.hostDir, "credit", "threshold", "--above", "2000.00", "--operator", "chief")
	big := firstLine(cardhostCLI(t, w.hostDir, "credit", "add", "--card", number, "--amount", "2500.00", "--operator", "alice"))
	small := firstLine(cardhostCLI(t, w.hostDir, "credit", "add", "--card", number, "--amount", "10.00", "--operator", "alice"))
	base := startServe(t, w.hostDir, "--balance-cap", "5000.00")

	dir := t.TempDir()
	storePath := filepath.Join(dir, "cardd.db")
	waitEmpty(t, 0)
	d := startDaemon(t, "CARDD_HOST_URL="+base, "CARDD_HOST_SECRET_FILE="+w.secretFile(t, dir),
		"CARDD_STORE_PATH="+storePath, "CARDD_TERMINAL_ID="+termID, "CARDD_LOAD_BALANCE_CAP=5000.00")
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
	waitCached(t, storePath, small, 10*time.Second)

	// Before the approval: the tap loads the 10.00, not the 2,500.00.
	tapLoads := func(what string) string {
		t.Helper()
		in := insert(t, path, 0, vpcd.Options{})
		m := d.waitLine(t, what, 15*time.Second, isTap("ok"))
		in.remove(t)
		return fmt.Sprint(m["loads"])
	}
	if loads := tapLoads("the tap before the approval"); !strings.Contains(loads, small+" +10.00 applied") || strings.Contains(loads, big) {
		t.Fatalf("tap before the approval loaded %s; want %s only", loads, small)
	}
	wantBalance(t, path, 11000)

	// Alice cannot approve her own credit: exit 2 with the reason.
	out, err := exec.Command(binary(t, "cardhost"), "credit", "approve", "--dir", w.hostDir, "--id", big, "--operator", "alice").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "cannot approve it") {
		t.Fatalf("alice approving her own credit: %v\n%s", err, out)
	}
	if loads := tapLoads("the tap after the refused approval"); strings.Contains(loads, big) {
		t.Fatalf("tap after alice's own approval loaded %s", loads)
	}
	wantBalance(t, path, 11000)

	// Bob approves it: it reaches the terminal and the next tap loads it.
	cardhostCLI(t, w.hostDir, "credit", "approve", "--id", big, "--operator", "bob", "--note", "receipt checked")
	waitCached(t, storePath, big, 10*time.Second)
	if loads := tapLoads("the tap after the approval"); !strings.Contains(loads, big+" +2500.00 applied") {
		t.Fatalf("tap after bob's approval loaded %s; want %s", loads, big)
	}
	wantBalance(t, path, 261000)
	if loads := tapLoads("a tap after the load"); strings.Contains(loads, big) {
		t.Fatalf("a later tap loaded %s again", loads)
	}
	wantBalance(t, path, 261000)

	c, err := w.host.Credit(context.Background(), big)
	if err != nil || c.State != hostapi.CreditConsumed || c.Approval != "approved" {
		t.Fatalf("host holds the credit %+v (%v); want consumed, approved", c, err)
	}
	// Loaded, it can no longer be cancelled, only corrected: a ledger
	// line of money owed back, the card untouched.
	out, err = exec.Command(binary(t, "cardhost"), "credit", "cancel", "--dir", w.hostDir, "--id", big, "--operator", "bob", "--reason", "wrong card").CombinedOutput()
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "cardhost credit correct") {
		t.Fatalf("cancel of the loaded credit: %v\n%s", err, out)
	}
	cardhostCLI(t, w.hostDir, "credit", "correct", "--id", big, "--amount", "2490.00", "--operator", "bob", "--reason", "meant 10.00")
	wantBalance(t, path, 261000)
	ledger := cardhostCLI(t, w.hostDir, "ledger", "--card", number)
	for _, want := range []string{"awaiting", "by operator alice", "approved", "by operator bob; added by operator alice; receipt checked",
		"corrected", "-2490.00", "by operator bob; meant 10.00", "corrected -2490.00: loaded by mistake"} {
		if !strings.Contains(ledger, want) {
			t.Fatalf("ledger lacks %q:\n%s", want, ledger)
		}
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-d.exit; err != nil {
		t.Errorf("cardd exited with %v after SIGTERM", err)
	}
}

// firstLine is the first line of a command's output: the id 'credit add'
// prints, before any note on stderr.
func firstLine(out string) string {
	line, _, _ := strings.Cut(out, "\n")
	return strings.TrimSpace(line)
}

// wantBalance wants the card file at path to hold fen in its EP purse.
func wantBalance(t *testing.T, path string, fen int64) {
	t.Helper()
	f, err := epursesim.LoadCardFile(path)
	if err != nil || f.EPBalance != fen {
		t.Fatalf("card holds %d (%v), want %d", f.EPBalance, err, fen)
	}
}
