package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/reader/vpcd"
)

// TestReplacementThroughServe is item 2's must-show through pcscd, `cardd
// run --mode pos`, the PSAM and `cardhost serve`: a named card of 83.20
// buys 7.50 at terminal A and 4.50 at terminal B, both offline; it is
// reported lost (`cardhost deny add`) and replaced (`cardhost card
// replace --settle 45s`); the terminals then come online and upload. When
// the window ends the replacement card's first tap loads exactly 71.20,
// and a second tap nothing more; the lost card tapped again is refused and
// keeps its balance.
func TestReplacementThroughServe(t *testing.T) {
	requirePCSC(t)
	ctx := context.Background()
	w := newHostWorld(t)
	insertPSAM(t, w.hostDir)
	const oldNumber, newNumber, termB = "3101000000800052", "3101000000800053", "000000000002"
	oldPath := w.issue(t, oldNumber, 8320)
	newPath := w.issue(t, newNumber, 0)
	dir := t.TempDir()
	secrets := map[string]string{termID: w.secretFile(t, dir)}
	secret, err := host.NewTerminalSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.host.AddTerminal(ctx, termB, secret, time.Now()); err != nil {
		t.Fatal(err)
	}
	secrets[termB] = filepath.Join(dir, termB+".secret")
	if err := os.WriteFile(secrets[termB], []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hostURL := startServe(t, w.hostDir)
	const offline = "http://127.0.0.1:1"
	env := func(term, url string) []string {
		return []string{"CARDD_MODE=pos", "CARDD_READER_SAM_PATTERN=^" + regexp.QuoteMeta(slot1Reader) + "$",
			"CARDD_HOST_URL=" + url, "CARDD_HOST_SECRET_FILE=" + secrets[term],
			"CARDD_STORE_PATH=" + filepath.Join(dir, term+".db"), "CARDD_TERMINAL_ID=" + term}
	}
	start := func(e []string) *daemon {
		waitEmpty(t, 0)
		d := startDaemon(t, e...)
		d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot1Reader && m["role"] == "sam" })
		return d
	}
	sell := func(e []string, amount string) {
		wait := posCharge(t, e, "", amount, "--wait", "20s")
		in := insert(t, oldPath, 0, vpcd.Options{})
		if out, err := wait(); err != nil || !strings.Contains(out, "paid "+amount) {
			t.Fatalf("cardd pos charge %s: %v\n%s", amount, err, out)
		}
		if err := in.remove(t); err != nil {
			t.Fatal(err)
		}
	}
	day := time.Now().Format(time.DateOnly)
	uploaded := func(purchases int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			rep, err := w.host.Daily(ctx, day)
			if err == nil && rep.Total.Purchases == purchases {
				return
			} else if time.Now().After(deadline) {
				t.Fatalf("the host holds %+v (%v); want %d purchases", rep.Total, err, purchases)
			}
		}
	}

	// Both terminals sell offline: the host knows nothing of it.
	for _, s := range []struct{ term, amount string }{{termID, "7.50"}, {termB, "4.50"}} {
		d := start(env(s.term, offline))
		sell(env(s.term, offline), s.amount)
		d.stop(t, 10*time.Second)
	}
	wantBalance(t, oldPath, 7120)

	cardhostCLI(t, w.hostDir, "deny", "add", "--card", oldNumber)
	// An anonymous card, lost too, cannot be replaced: exit 2, the reason.
	const anonNumber = "3101000000800054"
	if _, err := w.host.IssueCard(ctx, w.keys, host.IssueRequest{Number: anonNumber, BalanceFen: 5000,
		Start: epurse.Date{Year: 2025, Month: 9, Day: 1}, Expiry: epurse.Date{Year: 2029, Month: 8, Day: 31},
	}, filepath.Join(dir, anonNumber+".json"), "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	cardhostCLI(t, w.hostDir, "deny", "add", "--card", anonNumber)
	out, err := exec.Command(binary(t, "cardhost"), "card", "replace", "--dir", w.hostDir, "--old", anonNumber, "--new", newNumber).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "anonymous card cannot be replaced") {
		t.Fatalf("replacing an anonymous card: %v\n%s", err, out)
	}
	if out := cardhostCLI(t, w.hostDir, "card", "replace", "--old", oldNumber, "--new", newNumber, "--settle", "45s", "--operator", "wang"); !strings.Contains(out, "balance known 83.20") {
		t.Fatalf("card replace: %s", out)
	}
	for i, term := range []string{termID, termB} {
		d := start(env(term, hostURL))
		uploaded(i + 1)
		d.stop(t, 10*time.Second)
	}
	r, err := w.host.Replacement(ctx, oldNumber)
	if err != nil {
		t.Fatal(err)
	}
	// The window ends 45 s after the replacement; serve's minute sweep
	// settles it at its next run (or a heartbeat did, if both terminals
	// happened to report an empty queue after pulling the deny: certain).
	until, _ := time.Parse(time.RFC3339, r.SettleUntil)
	for deadline := until.Add(90 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if r, err = w.host.Replacement(ctx, oldNumber); err == nil && r.State == "settled" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("replacement %+v (%v) 90 s after its window ended; want settled", r, err)
		}
	}
	credits, err := w.host.Credits(ctx, newNumber)
	if err != nil || len(credits) != 1 || credits[0].AmountFen != 7120 || r.CreditedFen != 7120 || r.DebtFen != 0 {
		t.Fatalf("settled %+v; credits of the new card %+v (%v); want one of 71.20", r, credits, err)
	}

	storePath := filepath.Join(dir, termID+".db")
	d := start(env(termID, hostURL))
	waitCached(t, storePath, credits[0].ID, 10*time.Second)
	for i, want := range []string{credits[0].ID + " +71.20 applied", ""} {
		in := insert(t, newPath, 0, vpcd.Options{})
		m := d.waitLine(t, "a tap of the new card", 20*time.Second, isTap("ok"))
		if err := in.remove(t); err != nil {
			t.Fatal(err)
		}
		loads := fmt.Sprint(m["loads"])
		if want != "" && !strings.Contains(loads, want) || want == "" && strings.Contains(loads, credits[0].ID) {
			t.Fatalf("tap %d of the new card loaded %q; want %q", i+1, loads, want)
		}
		wantBalance(t, newPath, 7120)
	}
	if c, err := w.host.Credit(ctx, credits[0].ID); err != nil || c.State != hostapi.CreditConsumed {
		t.Fatalf("host holds the carried credit %+v (%v); want consumed", c, err)
	}

	// The lost card, found again, is refused and keeps its money: the
	// first tap blocks it on the chip (APPLICATION BLOCK with the host's
	// MAC), and a second finds it blocked.
	for i := range 2 {
		wait := posCharge(t, env(termID, hostURL), "", "1.00", "--wait", "5s")
		in := insert(t, oldPath, 0, vpcd.Options{})
		if m := d.waitLine(t, "the lost card's tap", 20*time.Second, func(m map[string]any) bool { return m["msg"] == "tap" }); m["outcome"] != "application_blocked" {
			t.Fatalf("the lost card's tap %d at a sale: %v; want application_blocked", i+1, m)
		}
		if out, err := wait(); err == nil || strings.Contains(out, "paid 1.00") {
			t.Fatalf("the lost card at a sale: %v\n%s; want refused", err, out)
		}
		if err := in.remove(t); err != nil {
			t.Fatal(err)
		}
	}
	wantBlocked(t, oldPath, 7120)
	if out := cardhostCLI(t, w.hostDir, "ledger", "--card", newNumber); !strings.Contains(out, "settled") || !strings.Contains(out, "71.20 carried") {
		t.Fatalf("ledger of the new card:\n%s", out)
	}
	d.stop(t, 10*time.Second)
}
