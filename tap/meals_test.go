package tap

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
)

func hm(h, m int) time.Duration { return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute }

// testMeals: a menu breakfast, a fixed lunch of 12.00 once a day, a keyed
// dinner of at most 30.00 from the end of lunch to midnight.
func testMeals(now func() time.Time) *Meals {
	return &Meals{Now: now, Periods: []Period{
		{Name: "breakfast", Start: hm(7, 0), End: hm(9, 0), Mode: PeriodMenu, Prices: []int64{300, 500}},
		{Name: "lunch", Start: hm(11, 0), End: hm(13, 30), Mode: PeriodFixed, Price: 1200, MaxCount: 1},
		{Name: "dinner", Start: hm(13, 30), End: hm(24, 0), Mode: PeriodKeyed, MaxAmount: 3000},
	}}
}

// TestMealsAt: a period is [start, end): its first second is in, its end
// is the next period's or none.
func TestMealsAt(t *testing.T) {
	m := testMeals(nil)
	day := func(h, mi, s int) time.Time { return time.Date(2026, 12, 3, h, mi, s, 0, time.Local) }
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{day(0, 0, 0), ""}, {day(6, 59, 59), ""}, {day(7, 0, 0), "breakfast"}, {day(8, 59, 59), "breakfast"},
		{day(9, 0, 0), ""}, {day(10, 59, 59), ""}, {day(11, 0, 0), "lunch"}, {day(13, 29, 59), "lunch"},
		{day(13, 30, 0), "dinner"}, {day(23, 59, 59), "dinner"},
	} {
		per, ok := m.At(c.at)
		if per.Name != c.want || ok != (c.want != "") {
			t.Errorf("At(%s) = %q %v, want %q", c.at.Format("15:04:05"), per.Name, ok, c.want)
		}
	}
	var none *Meals
	if _, ok := none.At(day(12, 0, 0)); ok {
		t.Error("no periods: a period found")
	}
	if err := none.admitArm(1); err != nil {
		t.Errorf("no periods: arming refused: %v", err)
	}
}

// TestArmWithinPeriods: the cashier arms inside a period only, a menu's
// prices only, a fixed period's price only; keyed takes any amount.
func TestArmWithinPeriods(t *testing.T) {
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.Local)
	till := &Till{MaxPurchase: 50000, Meals: testMeals(func() time.Time { return now })}
	for _, c := range []struct {
		at     time.Duration
		amount int64
		err    error
	}{
		{hm(8, 0), 500, nil}, {hm(8, 0), 400, ErrNotMealPrice}, {hm(10, 0), 500, ErrOutsidePeriods},
		{hm(12, 0), 1200, nil}, {hm(12, 0), 1250, ErrNotMealPrice}, {hm(18, 0), 1234, nil},
	} {
		now = time.Date(2026, 12, 3, 0, 0, 0, 0, time.Local).Add(c.at)
		_ = till.Disarm()
		_, err := till.Arm(c.amount, "")
		if !errors.Is(err, c.err) {
			t.Errorf("at %s arm %d: %v, want %v", now.Format("15:04"), c.amount, err, c.err)
		}
		if _, armed := till.Armed(); armed != (c.err == nil) {
			t.Errorf("at %s arm %d: armed %v", now.Format("15:04"), c.amount, armed)
		}
	}
	now = time.Date(2026, 12, 3, 10, 0, 0, 0, time.Local)
	if _, err := till.Arm(500, ""); err == nil || !strings.Contains(err.Error(), "breakfast 07:00-09:00, lunch 11:00-13:30") {
		t.Errorf("outside: %v, want the periods named", err)
	}
}

func newMealWorld(t *testing.T) *posWorld {
	w := newPOSWorld(t, 0)
	w.now = time.Date(2026, 12, 3, 11, 45, 0, 0, time.Local)
	w.till.Meals = testMeals(func() time.Time { return w.now })
	return w
}

// TestFixedLunchOncePerCard: in the fixed lunch a tap with nothing armed
// pays 12.00; the same card's second lunch is refused by the count limit
// before any debit, also at a second terminal (another journal) where
// only the card's log shows the first; a purchase at breakfast does not
// count towards lunch.
func TestFixedLunchOncePerCard(t *testing.T) {
	w := newMealWorld(t)
	w.now = w.now.Add(-4 * time.Hour) // 07:45, breakfast
	if _, err := w.till.Arm(500, ""); err != nil {
		t.Fatal(err)
	}
	if rep, err := w.tap(t, w.card); err != nil || !rep.Paid || rep.Period != "breakfast" {
		t.Fatalf("breakfast: %+v %v", rep, err)
	}
	w.now = w.now.Add(4 * time.Hour) // 11:45, lunch
	rep, err := w.tap(t, w.card)
	if err != nil || !rep.Paid || rep.Sale.AmountFen != 1200 || rep.Period != "lunch" {
		t.Fatalf("lunch with nothing armed: %+v %v", rep, err)
	}
	balance := w.card.File().EPBalance
	if balance != 12345-500-1200 {
		t.Fatalf("card balance %d", balance)
	}
	w.now = w.now.Add(time.Hour)
	rep, err = w.tap(t, w.card)
	if !errors.Is(err, ErrMealLimit) || !strings.Contains(err.Error(), "count limit") || !strings.Contains(err.Error(), "1 of the 1") || rep.Paid {
		t.Fatalf("second lunch: %+v %v", rep, err)
	}
	if (Result{Err: err}).Outcome() != OutcomeMealLimit {
		t.Fatalf("outcome %s", (Result{Err: err}).Outcome())
	}
	// A second terminal: its own journal, empty; the card's log stops it.
	other, err := offline.Open(filepath.Join(t.TempDir(), "other.db"), "000000000002")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	w.p.Store = other
	if _, err = w.tap(t, w.card); !errors.Is(err, ErrMealLimit) {
		t.Fatalf("second lunch at another terminal: %v", err)
	}
	if got := w.card.File().EPBalance; got != balance {
		t.Fatalf("card balance %d after refused lunches, want %d", got, balance)
	}
	if n, _ := other.QueueDepth(context.Background()); n != 0 {
		t.Fatalf("%d journal rows at the second terminal", n)
	}
}

// TestMealLimitFromJournal: a purchase of the card in this period that
// only this terminal's journal shows (the card's log does not, say the
// debit's answer never came and the card has not been back) counts.
func TestMealLimitFromJournal(t *testing.T) {
	w := newMealWorld(t)
	if _, err := w.store.Begin(context.Background(), offline.Row{Kind: offline.KindPurchase, State: offline.StateIntent,
		Card: w.card.File().Info.CardNumber, Purse: "EP", Counter: 999, AmountFen: 1200,
		Time: w.now.Add(-30 * time.Minute).Format(hostapi.TimeLayout)}); err != nil {
		t.Fatal(err)
	}
	// The tap first settles the row from the card (its counter never
	// reached 999, the log does not have it): unknown, which counts.
	rep, err := w.tap(t, w.card)
	if !errors.Is(err, ErrMealLimit) || rep.Paid {
		t.Fatalf("lunch after one in the journal: %+v %v", rep, err)
	}
	if got := w.card.File().EPBalance; got != 12345 {
		t.Fatalf("card balance %d", got)
	}
}

// TestMealAmountLimit: a keyed dinner of at most 30.00: 20.00 then 10.00
// pass, 0.01 more is refused, naming the amount limit.
func TestMealAmountLimit(t *testing.T) {
	w := newMealWorld(t)
	w.now = w.now.Add(6 * time.Hour) // 17:45, dinner
	for _, amount := range []int64{2000, 1000} {
		if _, err := w.till.Arm(amount, ""); err != nil {
			t.Fatal(err)
		}
		if rep, err := w.tap(t, w.card); err != nil || !rep.Paid || rep.Period != "dinner" {
			t.Fatalf("dinner %d: %+v %v", amount, rep, err)
		}
	}
	if _, err := w.till.Arm(1, ""); err != nil {
		t.Fatal(err)
	}
	rep, err := w.tap(t, w.card)
	if !errors.Is(err, ErrMealLimit) || !strings.Contains(err.Error(), "amount limit") || rep.Paid {
		t.Fatalf("over the dinner's amount: %+v %v", rep, err)
	}
	// Keyed with nothing armed: a balance inquiry, as without periods.
	_ = w.till.Disarm()
	if rep, err := w.tap(t, w.card); err != nil || rep.Sale.ID != "" {
		t.Fatalf("unarmed dinner tap: %+v %v", rep, err)
	}
}

// TestOutsidePeriodsRefused: outside every period a tap is refused with
// the reason, the card untouched; so is a sale armed in lunch and tapped
// after it, and the fixed sale lunch armed itself is dropped.
func TestOutsidePeriodsRefused(t *testing.T) {
	w := newMealWorld(t)
	w.now = w.now.Add(-2 * time.Hour) // 09:45
	_, err := w.tap(t, w.card)
	if !errors.Is(err, ErrOutsidePeriods) || (Result{Err: err}).Outcome() != OutcomeOutsidePeriods || !strings.Contains(err.Error(), "at 09:45") {
		t.Fatalf("tap at 09:45: %v", err)
	}
	w.now = time.Date(2026, 12, 3, 13, 29, 0, 0, time.Local) // lunch, but another menu: dinner is keyed
	w.till.Meals.Periods[2].Start = hm(17, 0)
	if _, err := w.till.Arm(1200, ""); err != nil {
		t.Fatal(err)
	}
	w.now = time.Date(2026, 12, 3, 13, 30, 0, 0, time.Local)
	if _, err := w.tap(t, w.card); !errors.Is(err, ErrOutsidePeriods) {
		t.Fatalf("lunch's sale tapped at 13:30: %v", err)
	}
	if got := w.card.File().EPBalance; got != 12345 {
		t.Fatalf("card balance %d", got)
	}
	if rows, err := w.store.PurchasesOn(context.Background(), w.card.File().Info.CardNumber, "20261203"); err != nil || len(rows) != 0 {
		t.Fatalf("purchase rows %+v %v", rows, err)
	}
	// An auto-armed fixed sale does not outlive its period.
	_ = w.till.Disarm()
	w.till.armFixed(w.till.Meals.Periods[1], true)
	w.till.armFixed(Period{}, false)
	if _, ok := w.till.Armed(); ok {
		t.Fatal("lunch's fixed sale still armed outside lunch")
	}
}

// TestM1FixedLunchOnce: an M1 wallet in the fixed lunch pays 12.00 with
// nothing armed, once: the wallet keeps no log, so this terminal's
// journal counts the first; outside every period it pays nothing.
func TestM1FixedLunchOnce(t *testing.T) {
	card, p, till, _ := newM1World(t, 5000)
	now := time.Date(2026, 12, 3, 11, 45, 0, 0, time.Local)
	p.Now = func() time.Time { return now }
	till.Meals = testMeals(p.Now)
	rep, err := chargeM1(p, card)
	if err != nil || !rep.Paid || rep.Sale.AmountFen != 1200 || rep.Period != "lunch" {
		t.Fatalf("M1 lunch: %+v %v", rep, err)
	}
	card.Reset()
	if rep, err = chargeM1(p, card); !errors.Is(err, ErrMealLimit) || rep.Paid {
		t.Fatalf("second M1 lunch: %+v %v", rep, err)
	}
	now = now.Add(-2 * time.Hour)
	card.Reset()
	if _, err = chargeM1(p, card); !errors.Is(err, ErrOutsidePeriods) {
		t.Fatalf("M1 tap at 09:45: %v", err)
	}
	if b := walletBalance(t, card); b != 3800 {
		t.Fatalf("wallet holds %d, want 38.00", b)
	}
}
