package tap

import (
	"context"
	"errors"
	"testing"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/offline"
)

func TestSplitParts(t *testing.T) {
	for _, c := range []struct {
		name                    string
		amount, capFen, balance int64
		card, collect           int64
	}{
		{"the card holds part", 3000, 0, 1840, 1840, 1160},
		{"an empty card", 3000, 0, 0, 0, 3000},
		{"a balance below zero (overdraft) pays nothing", 3000, 0, -50, 0, 3000},
		{"the card holds it all: no split needed", 3000, 0, 5000, 3000, 0},
		{"the card holds exactly the sale", 3000, 0, 3000, 3000, 0},
		{"the cap below the balance", 3000, 1000, 1840, 1000, 2000},
		{"the cap above the balance", 3000, 2500, 1840, 1840, 1160},
		{"the cap with a rich card", 3000, 2500, 9000, 2500, 500},
		{"one fen", 1, 0, 0, 0, 1},
	} {
		got := splitParts(Sale{AmountFen: c.amount, Split: true, CapFen: c.capFen}, c.balance)
		want := SplitParts{SaleFen: c.amount, CapFen: c.capFen, CardFen: c.card, CollectFen: c.collect}
		if got != want {
			t.Errorf("%s: %+v, want %+v", c.name, got, want)
		}
	}
}

func TestArmSplitRefusesABadCap(t *testing.T) {
	till := &Till{MaxPurchase: 50000}
	for _, capFen := range []int64{-1, 3001} {
		if _, err := till.ArmSplit(3000, capFen, ""); !errors.Is(err, ErrBadSale) {
			t.Errorf("cap %d: %v, want ErrBadSale", capFen, err)
		}
	}
	if _, ok := till.Armed(); ok {
		t.Fatal("a refused split sale is armed")
	}
	if _, err := till.ArmSplit(0, 0, ""); !errors.Is(err, ErrBadSale) {
		t.Errorf("amount 0: %v", err)
	}
	s, err := till.ArmSplit(3000, 3000, "")
	if err != nil || !s.Split || s.CapFen != 3000 || s.AmountFen != 3000 {
		t.Fatalf("cap equal to the sale: %+v %v", s, err)
	}
	if v, _ := till.View(func(string) string { return "" }); !v.Split || v.CapFen != 3000 {
		t.Fatalf("view %+v", v)
	}
}

func TestSplitOf(t *testing.T) {
	note := SplitParts{SaleFen: 3000, CardFen: 1840, CollectFen: 1160}.note()
	row := offline.Row{Kind: offline.KindPurchase, AmountFen: 1840, Detail: note}
	if s, ok := SplitOf(row); !ok || s.CollectFen != 1160 || s.SaleFen != 3000 {
		t.Fatalf("SplitOf(%q) = %+v %v", note, s, ok)
	}
	// A detail written later keeps the terms after its own words.
	row.Detail = withSplit(row, MAC2Alarm+": x")
	if s, ok := SplitOf(row); !ok || s.CardFen != 1840 || row.Detail[:len(MAC2Alarm)] != MAC2Alarm {
		t.Fatalf("SplitOf(%q) = %+v %v", row.Detail, s, ok)
	}
	if d := withSplit(row, row.Detail); d != row.Detail {
		t.Fatalf("the terms twice: %q", d)
	}
	for _, bad := range []offline.Row{
		{Kind: offline.KindPurchase, AmountFen: 1000, Detail: note}, // not this row's amount
		{Kind: offline.KindLoad, AmountFen: 1840, Detail: note},
		{Kind: offline.KindPurchase, AmountFen: 1840, Detail: "split: sale_fen=3000 cap_fen=0 card_fen=1840 collect_fen=1000"},
		{Kind: offline.KindPurchase, AmountFen: 1840, Detail: "recovered: the card's log holds this purchase"},
	} {
		if s, ok := SplitOf(bad); ok {
			t.Errorf("SplitOf(%+v) = %+v", bad, s)
		}
	}
}

// withBalance gives w a card like its own holding balance.
func (w *posWorld) withBalance(balance int64) {
	f := w.card.File()
	f.EPBalance = balance
	w.card = epursesim.NewSimCard(f, "")
}

// TestSplitSaleDebitsWhatTheCardHolds: 30.00 split on a card holding 18.40
// debits 18.40 once, journaled with the split's terms, and reports 11.60
// to collect; the receipt's row carries them.
func TestSplitSaleDebitsWhatTheCardHolds(t *testing.T) {
	w := newPOSWorld(t, 0)
	w.withBalance(1840)
	var receiptRow offline.Row
	w.p.Receipt = func(_ *CardRead, row offline.Row) (offline.NewReceipt, error) {
		receiptRow = row
		return offline.NewReceipt{Kind: "purchase", Body: []byte("{}")}, nil
	}
	if _, err := w.till.ArmSplit(3000, 0, ""); err != nil {
		t.Fatal(err)
	}
	rep, err := w.tap(t, w.card)
	if err != nil || !rep.Paid || !rep.MAC2Verified || rep.Balance != 0 {
		t.Fatalf("split tap: %+v %v", rep, err)
	}
	want := SplitParts{SaleFen: 3000, CardFen: 1840, CollectFen: 1160}
	if rep.Split == nil || *rep.Split != want || rep.Sale.AmountFen != 3000 {
		t.Fatalf("split %+v, sale %+v; want %+v", rep.Split, rep.Sale, want)
	}
	if got := w.card.File().EPBalance; got != 0 {
		t.Fatalf("card balance %d, want 0", got)
	}
	row, err := w.store.Get(context.Background(), rep.JournalID)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := SplitOf(row); !ok || s != want || row.AmountFen != 1840 || row.State != offline.StateDone {
		t.Fatalf("journal row %+v: split %+v %v", row, s, ok)
	}
	if s, ok := SplitOf(receiptRow); !ok || s != want {
		t.Fatalf("receipt row %+v: split %+v %v", receiptRow, s, ok)
	}
	if _, ok := w.till.Armed(); ok {
		t.Fatal("the sale is still armed")
	}
}

// TestSplitSaleEmptyCard: a card holding nothing pays nothing, writes
// nothing, and the whole sale is to collect; the sale leaves the till so
// that no later card pays what the cashier collects in cash.
func TestSplitSaleEmptyCard(t *testing.T) {
	w := newPOSWorld(t, 0)
	w.withBalance(0)
	w.till.ArmSplit(3000, 0, "")
	rep, err := w.tap(t, w.card)
	if err != nil || rep.Paid || rep.JournalID != "" {
		t.Fatalf("empty card: %+v %v", rep, err)
	}
	if rep.Split == nil || rep.Split.CardFen != 0 || rep.Split.CollectFen != 3000 {
		t.Fatalf("split %+v", rep.Split)
	}
	if _, ok := w.till.Armed(); ok {
		t.Fatal("the sale is still armed")
	}
	if rows, _ := w.store.PurchasesOn(context.Background(), testNumber, "20261123"); len(rows) != 0 {
		t.Fatalf("purchase rows %+v", rows)
	}
}

// TestSplitSaleCapAndEnoughBalance: the cap bounds the card part; a card
// holding the whole sale pays it all, nothing to collect.
func TestSplitSaleCapAndEnoughBalance(t *testing.T) {
	w := newPOSWorld(t, 0)
	w.till.ArmSplit(3000, 1000, "")
	rep, err := w.tap(t, w.card)
	if err != nil || !rep.Paid || rep.Split == nil || rep.Split.CardFen != 1000 || rep.Split.CollectFen != 2000 {
		t.Fatalf("capped: %+v %+v %v", rep, rep.Split, err)
	}
	w.till.ArmSplit(3000, 0, "")
	rep, err = w.tap(t, w.card)
	if err != nil || !rep.Paid || rep.Split == nil || rep.Split.CardFen != 3000 || rep.Split.CollectFen != 0 {
		t.Fatalf("enough balance: %+v %+v %v", rep, rep.Split, err)
	}
	if got := w.card.File().EPBalance; got != 12345-1000-3000 {
		t.Fatalf("card balance %d", got)
	}
}

// TestSplitSaleCardPartCountsAgainstTheDailyLimit: with a limit of 20.00,
// 30.00 split on a card holding 18.40 pays 18.40 without the PIN: the
// card part is what the limit counts, not the sale.
func TestSplitSaleCardPartCountsAgainstTheDailyLimit(t *testing.T) {
	w := newPOSWorld(t, 0)
	w.p.DailyLimit = 2000
	w.withBalance(1840)
	w.till.ArmSplit(3000, 0, "")
	rep, err := w.tap(t, w.card)
	if err != nil || !rep.Paid || rep.PINVerified || rep.Split.CardFen != 1840 {
		t.Fatalf("split under the limit: %+v %v", rep, err)
	}
	// 18.40 spent; a split capped at 5.00 goes over 20.00: the PIN.
	w.withBalance(5000)
	w.till.ArmSplit(3000, 500, "")
	if _, err := w.tap(t, w.card); !errors.Is(err, ErrPINRequired) {
		t.Fatalf("card part over the limit: %v, want ErrPINRequired", err)
	}
}

// TestSplitSaleCardPulledAtDebit: the card leaves during DEBIT FOR
// PURCHASE, its answer lost (delivered) or the command lost; with the
// till kept, and with a restart that restores the sale from the journal.
// Tapped again, the card holds exactly one debit of 18.40 and the outcome
// says 11.60 to collect.
func TestSplitSaleCardPulledAtDebit(t *testing.T) {
	at := debitIndex(t)
	for _, c := range []struct {
		deliver, restart bool
	}{{true, false}, {true, true}, {false, false}, {false, true}} {
		w := newPOSWorld(t, 3)
		w.withBalance(1840)
		w.till.ArmSplit(3000, 0, "")
		if _, err := w.tap(t, &cutAfter{t: w.card, n: at, deliver: c.deliver}); !errors.Is(err, ErrSaleInDoubt) {
			t.Fatalf("%+v: cut at DEBIT: %v, want ErrSaleInDoubt", c, err)
		}
		if c.restart {
			w.till = &Till{}
			w.p.Till = w.till
			rows, err := w.store.InDoubt(context.Background(), offline.KindPurchase)
			if err != nil || len(rows) != 1 {
				t.Fatalf("%+v: rows in doubt %+v %v", c, rows, err)
			}
			w.till.RestoreJournaled(rows[0])
			if s, ok := w.till.Armed(); !ok || !s.Split || s.AmountFen != 3000 {
				t.Fatalf("%+v: restored sale %+v", c, s)
			}
		}
		rep, err := w.tap(t, w.card)
		if err != nil || !rep.Paid {
			t.Fatalf("%+v: tap again: %+v %v", c, rep, err)
		}
		if want := (SplitParts{SaleFen: 3000, CardFen: 1840, CollectFen: 1160}); rep.Split == nil || *rep.Split != want {
			t.Fatalf("%+v: split %+v, want %+v", c, rep.Split, want)
		}
		if got := w.card.File().EPBalance; got != 0 {
			t.Fatalf("%+v: card balance %d, want 0 after one debit of 18.40", c, got)
		}
		rows, err := w.store.PurchasesOn(context.Background(), testNumber, "20261123")
		if err != nil || len(rows) != 1 || rows[0].State != offline.StateDone || rows[0].AmountFen != 1840 {
			t.Fatalf("%+v: purchase rows %+v %v", c, rows, err)
		}
		if c.deliver && rows[0].TAC == "" {
			// The card, emptied by the debit, refuses INITIALIZE: the TAC
			// comes from its log's newest record all the same.
			t.Fatalf("%+v: the recovered row has no TAC (%s)", c, rows[0].Detail)
		}
		if s, ok := SplitOf(rows[0]); !ok || s.CollectFen != 1160 {
			t.Fatalf("%+v: row detail %q lost the split", c, rows[0].Detail)
		}
		if _, ok := w.till.Armed(); ok {
			t.Fatalf("%+v: the sale is still armed", c)
		}
	}
}
