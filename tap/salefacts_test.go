package tap

import (
	"context"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/offline"
)

// TestPurchaseRowRecordsSaleFacts: the purchase row, written ahead of
// DEBIT, records what a shift's close-out totals: the meal period and the
// card's class (a staff lunch), the PIN that took a sale over the daily
// limit, and a split sale's rest to collect.
func TestPurchaseRowRecordsSaleFacts(t *testing.T) {
	w := newPOSWorld(t, 0)
	w.card = newTestCard(t, "王小明", 0, func(f *epursesim.CardFile) { f.Info.CardType = 0x0200 })
	w.now = time.Date(2026, 12, 3, 11, 45, 0, 0, time.Local)
	w.till.Meals = classMeals(w)
	w.p.DailyLimit = 2000
	row := func(rep PurchaseReport, err error) offline.Row {
		t.Helper()
		if err != nil || !rep.Paid {
			t.Fatalf("tap: %+v %v", rep, err)
		}
		r, err := w.store.Get(context.Background(), rep.JournalID)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if got := row(w.tap(t, w.card)).Sale; got != (offline.SaleFacts{Period: "lunch", Class: "staff"}) {
		t.Errorf("staff lunch row: %+v", got)
	}
	w.now = time.Date(2026, 12, 3, 18, 0, 0, 0, time.Local) // keyed dinner
	if _, err := w.till.Arm(1000, epursesim.DefaultPIN); err != nil {
		t.Fatal(err)
	}
	if got := row(w.tap(t, w.card)).Sale; got != (offline.SaleFacts{Period: "dinner", Class: "staff", PINVerified: true}) {
		t.Errorf("dinner over the daily limit with the PIN: %+v", got)
	}
	w.p.DailyLimit = -1
	// The cashier lets the card pay 18.40 of 30.00.
	if _, err := w.till.ArmSplit(3000, 1840, ""); err != nil {
		t.Fatal(err)
	}
	if got := row(w.tap(t, w.card)).Sale; got != (offline.SaleFacts{Period: "dinner", Class: "staff", CollectFen: 1160}) {
		t.Errorf("split dinner: %+v", got)
	}
}
