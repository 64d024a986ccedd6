package tap

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/offline"
)

// TestDiscounted: the percent of a price in whole fen, halves up, never
// below 1 fen, and exact at the largest amount a purchase carries.
func TestDiscounted(t *testing.T) {
	for _, c := range []struct {
		list    int64
		percent int
		want    int64
	}{
		{1000, 80, 800}, {999, 80, 799}, // 799.2
		{1001, 85, 851}, // 850.85
		{5, 50, 3},      // 2.5: half up
		{3, 50, 2},      // 1.5
		{7, 10, 1},      // 0.7
		{1, 49, 1},      // 0.49: not nothing
		{1, 1, 1},
		{0xFFFFFFFF, 99, 4252017622}, // 4252017622.05
	} {
		if got := Discounted(c.list, c.percent); got != c.want {
			t.Errorf("Discounted(%d, %d) = %d, want %d", c.list, c.percent, got, c.want)
		}
	}
}

// hostClass gives card the host's class as a pull would ("" clears it).
func hostClass(t *testing.T, w *posWorld, card, class string) {
	t.Helper()
	if err := w.store.ApplyPage(context.Background(), offline.PullPage{Classes: []offline.ClassChange{{Card: card, Class: class}}, Cursor: "1"}); err != nil {
		t.Fatal(err)
	}
}

// TestClassPrecedence: in the fixed lunch the host's card record decides
// the class over the card's type byte; with no record the type byte
// decides; a record of a class pos.classes does not name is no class (the
// default price, not the type byte's), logged once however many taps.
func TestClassPrecedence(t *testing.T) {
	for _, c := range []struct {
		name      string
		cardType  uint16
		host      string
		class     string
		wantPrice int64
	}{
		{"student type, host staff", 0x0100, "staff", "staff", 1500},
		{"staff type, host student", 0x0200, "student", "student", 1200},
		{"no record: the type", 0x0200, "", "staff", 1500},
		{"unknown type, host staff", 0x0900, "staff", "staff", 1500},
		{"host class unknown here", 0x0200, "teacher", "", 1200},
		{"host class with no card type", 0x0100, "guest", "guest", 1800},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newPOSWorld(t, 0)
			w.card = newTestCard(t, "王小明", 0, func(f *epursesim.CardFile) { f.Info.CardType = c.cardType })
			w.now = time.Date(2026, 12, 3, 11, 45, 0, 0, time.Local)
			w.till.Meals = classMeals(w)
			w.till.Meals.Classes.Names = map[string]bool{"guest": true}
			w.till.Meals.Periods[1].ClassPrices["guest"] = 1800
			if c.host != "" {
				hostClass(t, w, testNumber, c.host)
			}
			rep, err := w.tap(t, w.card)
			if err != nil || !rep.Paid || rep.Sale.AmountFen != c.wantPrice || rep.Class != c.class {
				t.Fatalf("lunch: %+v %v; want %d paid, class %q", rep, err, c.wantPrice, c.class)
			}
		})
	}

	// A record cleared: the type byte again.
	w := newPOSWorld(t, 0)
	w.card = newTestCard(t, "王小明", 0, func(f *epursesim.CardFile) { f.Info.CardType = 0x0100 })
	w.now = time.Date(2026, 12, 3, 18, 0, 0, 0, time.Local)
	w.till.Meals = classMeals(w)
	var logs bytes.Buffer
	w.p.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	for _, step := range []struct{ host, want string }{{"staff", "staff"}, {"", "student"}, {"teacher", ""}, {"teacher", ""}} {
		hostClass(t, w, testNumber, step.host)
		if _, err := w.till.Arm(100, ""); err != nil {
			t.Fatal(err)
		}
		if rep, err := w.tap(t, w.card); err != nil || !rep.Paid || rep.Class != step.want {
			t.Fatalf("host %q: %+v %v; want class %q", step.host, rep, err, step.want)
		}
	}
	if n := strings.Count(logs.String(), "pos.classes does not name"); n != 1 || !strings.Contains(logs.String(), "class=teacher") {
		t.Fatalf("%d warnings of the unknown class, want 1:\n%s", n, logs.String())
	}
}

// TestClassDiscount: in a keyed dinner discounting students to 80%, a
// student card armed 9.99 pays 7.99 (7.992 rounded), the report and the
// journal row carry the list price and the percent; a staff card pays the
// amount armed; a card the host's record makes a student is discounted
// whatever its type. In a menu breakfast at 50% the menu's prices are
// armed and halved, and an amount off the menu stays refused.
func TestClassDiscount(t *testing.T) {
	dinner := func(t *testing.T, cardType uint16, host string) (*posWorld, PurchaseReport, error) {
		w := newPOSWorld(t, 0)
		w.card = newTestCard(t, "王小明", 0, func(f *epursesim.CardFile) { f.Info.CardType = cardType })
		w.now = time.Date(2026, 12, 3, 18, 0, 0, 0, time.Local)
		w.till.Meals = classMeals(w)
		w.till.Meals.Periods[2].Discounts = map[string]int{"student": 80}
		if host != "" {
			hostClass(t, w, testNumber, host)
		}
		if _, err := w.till.Arm(999, ""); err != nil {
			t.Fatal(err)
		}
		rep, err := w.tap(t, w.card)
		return w, rep, err
	}
	w, rep, err := dinner(t, 0x0100, "")
	if err != nil || !rep.Paid || rep.Sale.AmountFen != 799 || rep.Discount == nil ||
		*rep.Discount != (Discount{Class: "student", Percent: 80, ListFen: 999, AmountFen: 799}) {
		t.Fatalf("student: %+v (discount %+v) %v", rep, rep.Discount, err)
	}
	if got := w.card.File().EPBalance; got != 12345-799 {
		t.Fatalf("student card balance %d, want %d", got, 12345-799)
	}
	row, err := w.store.Get(context.Background(), rep.JournalID)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := DiscountOf(row); row.AmountFen != 799 || !ok || d != *rep.Discount {
		t.Fatalf("journal row %+v: discount %+v %v", row, d, ok)
	}
	if _, rep, err = dinner(t, 0x0200, ""); err != nil || !rep.Paid || rep.Sale.AmountFen != 999 || rep.Discount != nil {
		t.Fatalf("staff: %+v %v", rep, err)
	}
	if _, rep, err = dinner(t, 0x0200, "student"); err != nil || !rep.Paid || rep.Sale.AmountFen != 799 || rep.Discount == nil {
		t.Fatalf("staff type, host student: %+v %v", rep, err)
	}

	w = newPOSWorld(t, 0)
	w.card = newTestCard(t, "王小明", 0, func(f *epursesim.CardFile) { f.Info.CardType = 0x0100 })
	w.now = time.Date(2026, 12, 3, 8, 0, 0, 0, time.Local)
	w.till.Meals = classMeals(w)
	w.till.Meals.Periods[0].Discounts = map[string]int{"student": 50}
	if _, err := w.till.Arm(250, ""); !errors.Is(err, ErrNotMealPrice) {
		t.Fatalf("arming the discounted amount off the menu: %v", err)
	}
	balance := int64(12345)
	for _, price := range []int64{500, 300} {
		if _, err := w.till.Arm(price, ""); err != nil {
			t.Fatal(err)
		}
		rep, err := w.tap(t, w.card)
		if err != nil || !rep.Paid || rep.Sale.AmountFen != price/2 || rep.Discount == nil || rep.Discount.ListFen != price {
			t.Fatalf("menu %d: %+v %v", price, rep, err)
		}
		balance -= price / 2
	}
	if got := w.card.File().EPBalance; got != balance {
		t.Fatalf("menu: card balance %d, want %d", got, balance)
	}
}

// TestDiscountRestored: a discounted sale's row whose debit a previous run
// never saw answered re-arms the price armed, not the discounted amount
// (a tap after a failed debit discounts it again), a split one split; a
// detail that replaces the row's keeps both terms.
func TestDiscountRestored(t *testing.T) {
	row := offline.Row{ID: "r1", Kind: offline.KindPurchase, Card: testNumber, AmountFen: 799, Detail: "discount: list_fen=999 percent=80 class=student"}
	var till Till
	till.RestoreJournaled(row)
	if s, _ := till.Armed(); s.AmountFen != 999 || s.Split {
		t.Fatalf("restored %+v, want 9.99 armed", s)
	}
	row = offline.Row{ID: "r2", Kind: offline.KindPurchase, Card: testNumber, AmountFen: 1840,
		Detail: "discount: list_fen=3000 percent=80 class=教 工; split: sale_fen=2400 cap_fen=0 card_fen=1840 collect_fen=560"}
	till.RestoreJournaled(row)
	if s, _ := till.Armed(); s.AmountFen != 3000 || !s.Split {
		t.Fatalf("restored split %+v, want 30.00 split", s)
	}
	d, ok := DiscountOf(row)
	if !ok || d != (Discount{Class: "教 工", Percent: 80, ListFen: 3000, AmountFen: 2400}) {
		t.Fatalf("DiscountOf = %+v %v", d, ok)
	}
	detail := withSplit(row, MAC2Alarm)
	if _, ok := DiscountOf(offline.Row{Kind: offline.KindPurchase, AmountFen: 1840, Detail: detail}); !ok || !strings.Contains(detail, "split: sale_fen=2400") {
		t.Fatalf("replaced detail %q lost terms", detail)
	}
	for _, bad := range []string{"discount: list_fen=0 percent=80 class=x", "discount: list_fen=999 percent=100 class=x", "discount: list_fen=x"} {
		if d, ok := DiscountOf(offline.Row{Kind: offline.KindPurchase, Detail: bad}); ok {
			t.Errorf("DiscountOf(%q) = %+v", bad, d)
		}
	}
}

// TestDiscountInDoubtAfterRestart: a student's discounted dinner whose
// DEBIT answer was lost, restored from the journal after a restart, is the
// list price armed again; tapped again the card is debited 7.99 once,
// whether the lost DEBIT happened (found paid, its discount reported) or
// not (discounted again from the list price, not from 7.99).
func TestDiscountInDoubtAfterRestart(t *testing.T) {
	at := debitIndex(t)
	for _, deliver := range []bool{true, false} {
		w := newPOSWorld(t, 0)
		w.card = newTestCard(t, "王小明", 0, func(f *epursesim.CardFile) { f.Info.CardType = 0x0100 })
		w.now = time.Date(2026, 12, 3, 18, 0, 0, 0, time.Local)
		w.till.Meals = classMeals(w)
		w.till.Meals.Periods[2].Discounts = map[string]int{"student": 80}
		if _, err := w.till.Arm(999, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := w.tap(t, &cutAfter{t: w.card, n: at, deliver: deliver}); !errors.Is(err, ErrSaleInDoubt) {
			t.Fatalf("deliver %v: %v, want the sale in doubt", deliver, err)
		}
		meals := w.till.Meals
		w.till = &Till{Meals: meals}
		w.p.Till = w.till
		rows, err := w.store.InDoubt(context.Background(), offline.KindPurchase)
		if err != nil || len(rows) != 1 || rows[0].AmountFen != 799 {
			t.Fatalf("deliver %v: rows in doubt %+v %v", deliver, rows, err)
		}
		w.till.RestoreJournaled(rows[0])
		if s, _ := w.till.Armed(); s.AmountFen != 999 {
			t.Fatalf("deliver %v: restored %+v, want the list price", deliver, s)
		}
		rep, err := w.tap(t, w.card)
		if err != nil || !rep.Paid || rep.Sale.AmountFen != 799 || rep.Discount == nil || rep.Discount.ListFen != 999 {
			t.Fatalf("deliver %v: tap after the restart %+v (discount %+v) %v", deliver, rep, rep.Discount, err)
		}
		if got := w.card.File().EPBalance; got != 12345-799 {
			t.Fatalf("deliver %v: card holds %d, want one debit of 7.99", deliver, got)
		}
	}
}

// TestM1HostClassDiscount: an M1 wallet has no type byte, so only the
// host's record gives it a class: with it, a keyed dinner discounting
// students debits 80%; without, the amount armed.
func TestM1HostClassDiscount(t *testing.T) {
	for _, c := range []struct {
		host  string
		class string
		paid  int64
	}{{"student", "student", 800}, {"", "", 1000}} {
		card, p, till, st := newM1World(t, 5000)
		now := time.Date(2026, 12, 3, 18, 0, 0, 0, time.Local)
		p.Now = func() time.Time { return now }
		till.Meals = testMeals(func() time.Time { return now })
		till.Meals.Classes = Classes{Names: map[string]bool{"student": true}}
		till.Meals.Periods[2].Discounts = map[string]int{"student": 80}
		if c.host != "" {
			if err := st.ApplyPage(context.Background(), offline.PullPage{Classes: []offline.ClassChange{{Card: m1Card, Class: c.host}}, Cursor: "1"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := till.Arm(1000, ""); err != nil {
			t.Fatal(err)
		}
		rep, err := chargeM1(p, card)
		if err != nil || !rep.Paid || rep.Class != c.class || rep.Sale.AmountFen != c.paid || walletBalance(t, card) != 5000-c.paid {
			t.Fatalf("host class %q: %+v %v; want %d paid", c.host, rep, err, c.paid)
		}
		row, err := st.Get(context.Background(), rep.JournalID)
		if _, ok := DiscountOf(row); err != nil || row.AmountFen != c.paid || ok != (c.host != "") {
			t.Fatalf("host class %q: row %+v %v", c.host, row, err)
		}
	}
}
