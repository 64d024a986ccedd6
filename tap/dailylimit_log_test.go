package tap

import (
	"errors"
	"testing"
	"time"

	psamsim "github.com/cardd/cardd/apdu/psam/sim"
)

// The card's log is in counter order: a purchase at a terminal whose clock
// was reset (dated 2000-01-01) between two purchases of today must not
// hide the older one from the daily limit. Newest first: today 10.00,
// 2000-01-01 1.00, today 15.00; spent 25.00, limit 30.00, so a sale of
// 6.00 asks for the PIN, as the POS did when it read 5 records.
func TestDailyLimitMisdatedRecordHidesNothing(t *testing.T) {
	w := newPOSWorld(t, 0)
	w.p.DailyLimit = 3000
	other := newPOSWorld(t, 0)
	other.card = w.card
	f, err := psamsim.NewSAMFile([6]byte{0, 0, 0, 0, 0x20, 0x09}, testMasters)
	if err != nil {
		t.Fatal(err)
	}
	other.sam = psamsim.NewSimPSAM(f, "")
	pay := func(amount int64, when time.Time) {
		t.Helper()
		other.now = when
		if _, err := other.till.Arm(amount, ""); err != nil {
			t.Fatal(err)
		}
		if rep, err := other.tap(t, w.card); err != nil || !rep.Paid {
			t.Fatalf("other terminal: %+v %v", rep, err)
		}
	}
	pay(1500, w.now.Add(-2*time.Hour))
	pay(100, time.Date(2000, 1, 1, 12, 0, 0, 0, time.Local))
	pay(1000, w.now.Add(-time.Hour))
	if _, err := w.till.Arm(600, ""); err != nil {
		t.Fatal(err)
	}
	rep, err := w.tap(t, w.card)
	if !errors.Is(err, ErrPINRequired) {
		t.Fatalf("err %v, paid %v, spent today counted %d; want ErrPINRequired (25.00 spent + 6.00 > 30.00)", err, rep.Paid, rep.SpentToday)
	}
	if rep.SpentToday != 2500 {
		t.Errorf("spent today counted %d; want 2500", rep.SpentToday)
	}
}
