package integration

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/reader/vpcd"
)

// TestProductCapThroughServe is item 1's must-show through pcscd, `cardd
// run` and `cardhost serve`: two cards hold 950.00 each and wait for a
// 100.00 credit; one is named (cap 5,000.00), the other put on the
// anonymous product with `cardhost card product` (cap 1,000.00). Host and
// terminal caps are 5,000.00, so only the product tells them apart: the
// named card's tap loads the 100.00, the anonymous card's is refused with
// the product and its cap in the reason, on the tap's API event (what the
// kiosk page shows) and in the log, and the card keeps 950.00. An edit
// of the anonymous cap to 1,100.00 reaches the terminal, and the credit
// loads.
func TestProductCapThroughServe(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	const named, anon = "3101000000990013", "3101000000990021"
	namedPath, anonPath := w.issue(t, named, 95000), w.issue(t, anon, 95000)
	if out := cardhostCLI(t, w.hostDir, "card", "product", "--card", anon, "--set", "anonymous"); !strings.Contains(out, "product anonymous") {
		t.Fatalf("card product --set printed %q", out)
	}
	namedCredit, anonCredit := w.credit(t, named, 10000), w.credit(t, anon, 10000)
	base := startServe(t, w.hostDir, "--balance-cap", "5000.00")

	dir := t.TempDir()
	storePath := filepath.Join(dir, "cardd.db")
	waitEmpty(t, 0)
	d := startDaemon(t, "CARDD_HOST_URL="+base, "CARDD_HOST_SECRET_FILE="+w.secretFile(t, dir),
		"CARDD_STORE_PATH="+storePath, "CARDD_TERMINAL_ID="+termID, "CARDD_LOAD_BALANCE_CAP=5000.00")
	events := openEvents(t, d.apiAddr(t))
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
	waitCached(t, storePath, namedCredit, 10*time.Second)
	waitCached(t, storePath, anonCredit, 10*time.Second)

	tap := func(path string) *localapi.TapView {
		t.Helper()
		in := insert(t, path, 0, vpcd.Options{})
		e := events.wait(t, localapi.EventCardTap)
		in.remove(t)
		if e.Tap == nil || e.Tap.Outcome != "ok" || len(e.Tap.Loads) != 1 {
			t.Fatalf("tap: %+v", e.Tap)
		}
		return e.Tap
	}
	if v := tap(namedPath); !v.Loads[0].Applied || v.BalanceAfter != "1050.00" {
		t.Fatalf("the named card's tap: %+v; want 100.00 applied, 1050.00", v.Loads)
	}
	wantBalance(t, namedPath, 105000)

	v := tap(anonPath)
	const reason = "anonymous card: balance 950.00 + 100.00 = 1050.00 would exceed its cap of 1000.00"
	if v.Loads[0].Applied || !strings.Contains(v.Loads[0].Refused, reason) {
		t.Fatalf("the anonymous card's tap: %+v; want refused with %q", v.Loads, reason)
	}
	d.waitLine(t, "the anonymous card's tap in the log", 5*time.Second, func(m map[string]any) bool {
		return m["msg"] == "tap" && strings.Contains(strings.Join(toStrings(m["loads"]), "; "), reason)
	})
	wantBalance(t, anonPath, 95000)

	// An edit of the product reaches the terminal at its next pull: with
	// the anonymous cap at 1,100.00 the same credit loads.
	cardhostCLI(t, w.hostDir, "product", "set", "--name", "anonymous", "--cap", "1100.00")
	waitProductCap(t, storePath, "anonymous", 110000, 10*time.Second)
	if v := tap(anonPath); !v.Loads[0].Applied || v.BalanceAfter != "1050.00" {
		t.Fatalf("the anonymous card's tap after the edit: %+v; want 100.00 applied, 1050.00", v.Loads)
	}
	wantBalance(t, anonPath, 105000)

	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-d.exit; err != nil {
		t.Errorf("cardd exited with %v after SIGTERM", err)
	}
}

// waitProductCap waits until the terminal's store at path holds product
// name with cap capFen, as its pull from the host gave it.
func waitProductCap(t *testing.T, path, name string, capFen int64, limit time.Duration) {
	t.Helper()
	db := sqlOpen(t, path)
	deadline := time.Now().Add(limit)
	for {
		var got int64
		err := db.QueryRow(`SELECT cap_fen FROM products WHERE name = ?`, name).Scan(&got)
		if err == nil && got == capFen {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the terminal holds product %s at %d (%v) after %v, want %d", name, got, err, limit, capFen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// toStrings is a JSON log field's list of strings.
func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
