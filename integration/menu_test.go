package integration

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/reader/vpcd"
)

// TestPOSMenuPeriod: `cardd run --mode pos` in a menu lunch (8.00 or
// 10.50, at most 2 per card) around now. `cardd pos charge` of a price
// not on the menu is refused (exit 2) naming the menu, and nothing is
// armed; 10.50 and then 8.00 armed are paid by the card through the PSAM;
// a third sale of the card is refused by the count limit when the card
// taps, nothing debited.
func TestPOSMenuPeriod(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	insertPSAM(t, w.hostDir)
	const number = "3101000000800057"
	path := w.issue(t, number, 5000)
	around, _ := periodsAround(t)
	around = strings.Replace(around, `mode: fixed, price: "12.00", max_count: 1`, `mode: menu, prices: ["8.00", "10.50"], max_count: 2`, 1)
	store := filepath.Join(t.TempDir(), "cardd.db")
	env := []string{"CARDD_MODE=pos", "CARDD_READER_SAM_PATTERN=^" + regexp.QuoteMeta(slot1Reader) + "$",
		"CARDD_STORE_PATH=" + store, "CARDD_TERMINAL_ID=" + termID, "CARDD_POS_PERIODS=" + around}
	waitEmpty(t, 0)
	d := startDaemon(t, env...)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot1Reader && m["role"] == "sam" })

	if out, code := posChargeRefused(t, env, "9.00"); code != 2 || !strings.Contains(out, "lunch sells 8.00, 10.50, not 9.00") {
		t.Fatalf("cardd pos charge 9.00 in the menu lunch: exit %d\n%s", code, out)
	}
	balance := int64(5000)
	for _, sale := range []struct {
		amount string
		fen    int64
	}{{"10.50", 1050}, {"8.00", 800}} {
		wait := posCharge(t, env, "", sale.amount, "--wait", "20s")
		in := insert(t, path, 0, vpcd.Options{})
		out, err := wait()
		in.remove(t)
		balance -= sale.fen
		if err != nil || !strings.Contains(out, "paid "+sale.amount) {
			t.Fatalf("cardd pos charge %s from the menu: %v\n%s", sale.amount, err, out)
		}
		f, err := epursesim.LoadCardFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if f.EPBalance != balance {
			t.Fatalf("balance %d after %s, want %d", f.EPBalance, sale.amount, balance)
		}
	}
	rows := purchaseRows(t, store, number)
	if len(rows) != 2 || rows[0].AmountFen != 1050 || rows[1].AmountFen != 800 {
		t.Fatalf("purchase rows %+v", rows)
	}
	for _, r := range rows {
		checkTAC(t, path, r)
	}

	// The third lunch of the card: armed (the card is not known until it
	// taps), refused at the tap by the count limit.
	wait := posCharge(t, env, "", "8.00", "--wait", "20s")
	in := insert(t, path, 0, vpcd.Options{})
	out, err := wait()
	in.remove(t)
	if err == nil || !strings.Contains(out, "count limit") {
		t.Fatalf("the third menu lunch: %v\n%s", err, out)
	}
	d.stop(t, 10*time.Second)
	f, err := epursesim.LoadCardFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(purchaseRows(t, store, number)); f.EPBalance != balance || n != 2 {
		t.Fatalf("after the refused third lunch: balance %d, %d purchase rows", f.EPBalance, n)
	}
}
