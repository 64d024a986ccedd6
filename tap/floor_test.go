package tap

import (
	"context"
	"strings"
	"testing"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/offline"
)

// cardCommands are the headers (CLA INS P1 P2) of the commands a bench
// tap sent the card, in order.
func cardCommands(trace []string) []string {
	var cmds []string
	for _, l := range trace {
		if h, ok := strings.CutPrefix(l, "card> "); ok {
			cmds = append(cmds, h[:8])
		}
	}
	return cmds
}

// floorBench is a POS without a daily limit (no rule needs the card's log)
// and with a PSAM, its sale armed before the card comes.
func floorBench(t *testing.T, card *epursesim.SimCard, sale int64) *tapBench {
	b := newTapBench(t)
	b.card, b.r.Loader, b.r.Purchaser = card, b.loader(nil), b.pos(sale, false)
	b.r.Purchaser.DailyLimit = -1
	return b
}

// TestArmedPurchaseAtTheFloor: with a sale armed and no rule that needs the
// card's log, the card is sent SELECT, INITIALIZE FOR PURCHASE and DEBIT
// FOR PURCHASE, and nothing else: INITIALIZE's answer is the balance. The
// balance shown, published once it is known and before the card may
// leave, is the card's before the sale; the purchase's after it.
func TestArmedPurchaseAtTheFloor(t *testing.T) {
	card := newTestCard(t, "王小明", 3, nil)
	before := card.File().EPBalance
	b := floorBench(t, card, 1250)
	res := b.tap()
	if got, want := strings.Join(cardCommands(b.trace), " "), "00A40400 80500102 80540100"; got != want {
		t.Fatalf("card commands %s, want %s (SELECT, INITIALIZE, DEBIT):\n%s", got, want, strings.Join(b.trace, "\n"))
	}
	if res.CardAPDUs != 3 {
		t.Errorf("CardAPDUs = %d, want 3", res.CardAPDUs)
	}
	if res.Err != nil || res.Purchase == nil || !res.Purchase.Paid {
		t.Fatalf("not paid: %s", summary(res))
	}
	if res.Read.Balance != before || res.Load.Balance != before || res.Purchase.Balance != before-1250 {
		t.Errorf("balances read %d, load %d, purchase %d; want %d, %d, %d", res.Read.Balance, res.Load.Balance, res.Purchase.Balance, before, before, before-1250)
	}
	if got := card.File().EPBalance; got != before-1250 {
		t.Errorf("card holds %d, want %d", got, before-1250)
	}
	balances, leave := 0, -1
	for i, l := range b.trace {
		switch {
		case strings.HasPrefix(l, "OnBalance "):
			balances++
			if !strings.Contains(l, "balance=14434") || leave >= 0 {
				t.Errorf("OnBalance %q at line %d (OnLeave at %d): want the balance before the sale, before the leave", l, i, leave)
			}
		case strings.HasPrefix(l, "OnLeave "):
			leave = i
		}
	}
	if balances != 1 {
		t.Errorf("OnBalance told %d times, want once", balances)
	}
}

// TestArmedPurchaseInsufficient: a card holding less than the armed sale
// refuses INITIALIZE FOR PURCHASE (9401); the sale is refused with no
// DEBIT sent, the card unchanged, no purchase journaled, and the balance
// to show read after the refusal.
func TestArmedPurchaseInsufficient(t *testing.T) {
	card := newTestCard(t, "王小明", 3, nil)
	before, counter := card.File().EPBalance, card.File().EPOfflineCounter
	b := floorBench(t, card, before+1)
	res := b.tap()
	cmds := cardCommands(b.trace)
	if got, want := strings.Join(cmds, " "), "00A40400 80500102 805C0002"; got != want {
		t.Errorf("card commands %s, want %s (SELECT, INITIALIZE refused, GET BALANCE)", got, want)
	}
	if res.Outcome() != OutcomeInsufficient || res.Purchase == nil || res.Purchase.Paid || res.Purchase.JournalID != "" {
		t.Fatalf("tap: %s", summary(res))
	}
	if res.Read.Balance != before || res.Purchase.Balance != before {
		t.Errorf("balances read %d, purchase %d; want %d", res.Read.Balance, res.Purchase.Balance, before)
	}
	if f := card.File(); f.EPBalance != before || f.EPOfflineCounter != counter {
		t.Errorf("card holds %d at counter %d, want %d at %d", f.EPBalance, f.EPOfflineCounter, before, counter)
	}
	rows, err := b.store.List(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Kind == offline.KindPurchase {
			t.Errorf("a purchase row for a refused sale: %+v", r)
		}
	}
	if _, armed := b.r.Purchaser.Till.Armed(); !armed {
		t.Error("the refused sale left the till")
	}
}

// TestPOSReadsTheBalanceFirst: the taps that need the balance before the
// purchase still read it right after SELECT: a balance inquiry (no sale
// armed), a card with an unfinished purchase to settle first (rule 3), a
// card of a family with a second purse (INITIALIZE does not answer it).
func TestPOSReadsTheBalanceFirst(t *testing.T) {
	for _, tc := range []struct {
		name  string
		card  func(t *testing.T) *epursesim.SimCard
		sale  int64
		setup func(t *testing.T, b *tapBench)
		// the card commands up to the first INITIALIZE, or all of them
		want string
	}{
		{"no sale armed", func(t *testing.T) *epursesim.SimCard { return newTestCard(t, "王小明", 3, nil) }, 0, nil,
			"00A40400 805C0002"},
		{"unfinished purchase", func(t *testing.T) *epursesim.SimCard { return newTestCard(t, "王小明", 3, nil) }, 1250,
			func(t *testing.T, b *tapBench) {
				card := b.card.(*epursesim.SimCard)
				cr, err := ReadPurse(card, ReadOptions{}, nil)
				if err != nil {
					t.Fatal(err)
				}
				card.Reset()
				unresolvedPurchase(t, b.store, cr, card.File().EPOfflineCounter)
			}, "00A40400 805C0002"},
		{"second purse", func(t *testing.T) *epursesim.SimCard { return tunionCard(t, 12345, 12000) }, 1000, nil,
			"00A40400 00A40400 805C0002 805C0102"}, // our AID, then the T-Union one
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := floorBench(t, tc.card(t), tc.sale)
			if tc.setup != nil {
				tc.setup(t, b)
			}
			res := b.tap()
			cmds := cardCommands(b.trace)
			n := len(strings.Fields(tc.want))
			if len(cmds) < n || strings.Join(cmds[:n], " ") != tc.want {
				t.Fatalf("card commands %v, want them to begin %s", cmds, tc.want)
			}
			switch tc.name {
			case "unfinished purchase":
				if res.Err != nil || !res.Purchase.Paid || len(res.Purchase.Recovered) != 1 {
					t.Errorf("tap: %s", summary(res))
				}
			case "second purse":
				// 3.45 to spend: refused before INITIALIZE, as always.
				if res.Outcome() != OutcomeInsufficient || len(cmds) != n {
					t.Errorf("tap: %s, card commands %v", summary(res), cmds)
				}
			}
		})
	}
}
