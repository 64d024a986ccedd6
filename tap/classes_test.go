package tap

import (
	"errors"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
)

// classMeals is testMeals with classes by card type (staff: type byte 02,
// visitor: exactly 0301) and a staff lunch of 15.00, visitors paying the
// default.
func classMeals(w *posWorld) *Meals {
	m := testMeals(nil)
	m.Now = func() time.Time { return w.now }
	m.Periods[1].ClassPrices = map[string]int64{"staff": 1500}
	m.Classes = Classes{Types: map[uint16]string{0x0301: "visitor"}, TypeBytes: map[byte]string{0x01: "student", 0x02: "staff"}}
	return m
}

// TestClassPrices: in the fixed lunch a staff card (type byte 02, whatever
// byte 29) pays the staff price, a student card and a card of an unknown
// type the default price, the unknown one with no class; the report
// carries the class. A keyed period keeps the armed amount for staff.
func TestClassPrices(t *testing.T) {
	for _, c := range []struct {
		name      string
		cardType  uint16
		class     string
		wantPrice int64
	}{
		{"staff", 0x0200, "staff", 1500},
		{"staff, byte 29 set", 0x0207, "staff", 1500},
		{"student", 0x0100, "student", 1200},
		{"visitor by both bytes", 0x0301, "visitor", 1200},
		{"type 03 of no whole type", 0x0302, "", 1200},
		{"unknown type", 0x0900, "", 1200},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newPOSWorld(t, 0)
			w.card = newTestCard(t, "王小明", 0, func(f *epursesim.CardFile) { f.Info.CardType = c.cardType })
			w.now = time.Date(2026, 12, 3, 11, 45, 0, 0, time.Local)
			w.till.Meals = classMeals(w)
			rep, err := w.tap(t, w.card)
			if err != nil || !rep.Paid || rep.Sale.AmountFen != c.wantPrice || rep.Class != c.class || rep.Period != "lunch" {
				t.Fatalf("lunch: %+v %v; want %d paid, class %q", rep, err, c.wantPrice, c.class)
			}
			if got := w.card.File().EPBalance; got != 12345-c.wantPrice {
				t.Fatalf("card balance %d, want %d", got, 12345-c.wantPrice)
			}
		})
	}
	// Keyed dinner: the staff card pays what is armed, not a class price.
	w := newPOSWorld(t, 0)
	w.card = newTestCard(t, "王小明", 0, func(f *epursesim.CardFile) { f.Info.CardType = 0x0200 })
	w.now = time.Date(2026, 12, 3, 18, 0, 0, 0, time.Local)
	w.till.Meals = classMeals(w)
	if _, err := w.till.Arm(888, ""); err != nil {
		t.Fatal(err)
	}
	if rep, err := w.tap(t, w.card); err != nil || !rep.Paid || rep.Sale.AmountFen != 888 || rep.Class != "staff" {
		t.Fatalf("keyed dinner: %+v %v", rep, err)
	}
}

// TestClassPriceArmed: in the fixed lunch the cashier may arm the staff
// price; a student card tapped on it is refused (its price is 12.00) and
// nothing is debited.
func TestClassPriceArmed(t *testing.T) {
	w := newPOSWorld(t, 0)
	w.card = newTestCard(t, "王小明", 0, func(f *epursesim.CardFile) { f.Info.CardType = 0x0100 })
	w.now = time.Date(2026, 12, 3, 11, 45, 0, 0, time.Local)
	w.till.Meals = classMeals(w)
	if _, err := w.till.Arm(1400, ""); !errors.Is(err, ErrNotMealPrice) {
		t.Fatalf("arming 14.00: %v", err)
	}
	if _, err := w.till.Arm(1500, ""); err != nil {
		t.Fatalf("arming the staff price: %v", err)
	}
	rep, err := w.tap(t, w.card)
	if !errors.Is(err, ErrNotMealPrice) || rep.Paid || w.card.File().EPBalance != 12345 {
		t.Fatalf("student on the staff price: %+v %v", rep, err)
	}
}
