package tap

import (
	"context"
	"errors"
	"testing"

	"github.com/cardd/cardd/offline"
)

// closeDuringTap is a Till.Shift (pos.require_shift) that finds a shift
// open, as the tap's check does, and closes it at once: the cashier's
// close landing between the check and the sale's write-ahead.
func closeDuringTap(t *testing.T, st *offline.Store) func() error {
	ctx := context.Background()
	if _, err := st.OpenShift(ctx, "c01"); err != nil {
		t.Fatal(err)
	}
	return func() error {
		if _, ok, err := st.CurrentShift(ctx); err != nil || !ok {
			return ErrNoShift
		}
		if _, err := st.CloseShift(ctx, offline.CloseOptions{}); err != nil {
			t.Error(err)
		}
		return nil
	}
}

// noSaleInNoShift fails when the journal holds a purchase done in no shift.
func noSaleInNoShift(t *testing.T, st *offline.Store) {
	t.Helper()
	rows, err := st.List(context.Background(), 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Kind == offline.KindPurchase && r.State != offline.StateFailed && r.Sale.Shift == 0 {
			t.Fatalf("a sale in no shift at a till that requires one: %+v", r)
		}
	}
}

// TestRequireShiftClosedDuringTap: with pos.require_shift, a shift closed
// after the tap's check but before the write-ahead leaves the sale in no
// shift, which no close-out counts: it is refused no_shift, nothing
// debited.
func TestRequireShiftClosedDuringTap(t *testing.T) {
	w := newMealWorld(t) // 11:45, the fixed lunch
	w.till.Shift = closeDuringTap(t, w.store)
	balance := w.card.File().EPBalance
	rep, err := w.tap(t, w.card)
	if !errors.Is(err, ErrNoShift) || rep.Paid {
		t.Fatalf("lunch with the shift closed during the tap: %+v %v", rep, err)
	}
	if got := w.card.File().EPBalance; got != balance {
		t.Fatalf("card balance %d, want %d", got, balance)
	}
	noSaleInNoShift(t, w.store)
}

// TestRequireShiftClosedDuringM1Tap is the same for an M1 wallet.
func TestRequireShiftClosedDuringM1Tap(t *testing.T) {
	card, p, till, st := newM1World(t, 5000)
	till.Arm(1250, "")
	till.Shift = closeDuringTap(t, st)
	rep, err := chargeM1(p, card)
	if !errors.Is(err, ErrNoShift) || rep.Paid {
		t.Fatalf("M1 sale with the shift closed during the tap: %+v %v", rep, err)
	}
	if b := walletBalance(t, card); b != 5000 {
		t.Fatalf("wallet holds %d", b)
	}
	noSaleInNoShift(t, st)
}
