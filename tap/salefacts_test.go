package tap

import (
	"context"
	"errors"
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

// TestRequireShift: with Till.Shift (pos.require_shift) and no shift open,
// arming is refused and a fixed lunch tap ends no_shift, nothing debited
// or journaled; once a shift is open both sell.
func TestRequireShift(t *testing.T) {
	w := newMealWorld(t)
	open := false
	w.till.Shift = func() error {
		if !open {
			return ErrNoShift
		}
		return nil
	}
	balance := w.card.File().EPBalance
	w.now = w.now.Add(-4 * time.Hour) // 07:45, breakfast
	if _, err := w.till.Arm(500, ""); !errors.Is(err, ErrNoShift) {
		t.Fatalf("arming with no shift open: %v", err)
	}
	w.now = w.now.Add(4 * time.Hour) // 11:45, the fixed lunch
	rep, err := w.tap(t, w.card)
	if !errors.Is(err, ErrNoShift) || (Result{Err: err}).Outcome() != OutcomeNoShift || rep.Paid {
		t.Fatalf("fixed lunch with no shift open: %+v %v", rep, err)
	}
	if got := w.card.File().EPBalance; got != balance {
		t.Fatalf("card balance %d, want %d", got, balance)
	}
	if n, _ := w.store.QueueDepth(context.Background()); n != 0 {
		rows, _ := w.store.List(context.Background(), 0, 10)
		for _, r := range rows {
			if r.Kind == offline.KindPurchase {
				t.Fatalf("a purchase row was journaled: %+v", r)
			}
		}
	}
	open = true
	// As the daemon's check (daemon.shiftOpen) reads it: the store's.
	if _, err := w.store.OpenShift(context.Background(), "c01"); err != nil {
		t.Fatal(err)
	}
	if rep, err := w.tap(t, w.card); err != nil || !rep.Paid || rep.Sale.AmountFen != 1200 {
		t.Fatalf("fixed lunch in a shift: %+v %v", rep, err)
	}
}
