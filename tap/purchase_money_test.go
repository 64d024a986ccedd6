package tap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	psamsim "github.com/cardd/cardd/apdu/psam/sim"
	"github.com/cardd/cardd/offline"
)

// TestPurchaseWriteAheadSurvivesAKill cuts a sale at DEBIT FOR PURCHASE,
// before the card gets it and after the card got it, with the card pulled,
// or with the daemon killed there (its journal closed, as by a crash, then
// opened again with a new till, as a restart does): the write-ahead row
// must be on disk in every case (money rule 2), so that the card's next
// tap settles the sale from the card, paid exactly once.
func TestPurchaseWriteAheadSurvivesAKill(t *testing.T) {
	for _, c := range []struct{ deliver, kill bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		t.Run(fmt.Sprintf("delivered=%v/killed=%v", c.deliver, c.kill), func(t *testing.T) {
			ctx := context.Background()
			w := newPOSWorld(t, 3)
			start := w.card.File().EPBalance
			if _, err := w.till.Arm(700, ""); err != nil {
				t.Fatal(err)
			}
			cut := &at{t: w.card, ins: insDebit, cut: true, deliver: c.deliver}
			want := offline.StateUnknown // the answer never came
			if c.kill {
				cut.kill = func() { w.store.Close() }
				want = offline.StateIntent // nothing after the row was written
			}
			_, err := w.tap(t, cut)
			if err == nil {
				t.Fatal("no error with the tap cut at DEBIT FOR PURCHASE")
			}
			// The cashier must hear "in doubt", never "not paid": the card
			// may have debited (when the journal survives to say so).
			if o := (Result{Err: err}).Outcome(); !c.kill && o != OutcomeSaleInDoubt {
				t.Errorf("tap cut at DEBIT FOR PURCHASE ended %s (%v), want sale_in_doubt", o, err)
			}
			if want := map[bool]int{false: 0, true: 1}[c.deliver]; cut.sent != want {
				t.Fatalf("DEBIT FOR PURCHASE sent %d times", cut.sent)
			}
			if c.kill {
				st, err := offline.Open(w.store.Path(), w.store.TerminalID())
				if err != nil {
					t.Fatal(err)
				}
				w.store, w.p.Store = st, st
				w.till = &Till{}
				w.p.Till = w.till
			}
			rows, err := w.store.InDoubt(ctx, offline.KindPurchase)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 || rows[0].State != want || rows[0].Card != testNumber || rows[0].AmountFen != 700 || rows[0].BalanceFen != start {
				t.Fatalf("journal after the cut: %+v, want the sale's row in %s", rows, want)
			}
			if c.kill {
				w.till.RestoreInDoubt(rows[0].Card, rows[0].ID, rows[0].AmountFen)
			}
			rep, err := w.tap(t, w.card)
			if err != nil || !rep.Paid || len(rep.Recovered) != 1 || rep.Recovered[0].Applied != c.deliver {
				t.Fatalf("next tap: %+v, %v", rep, err)
			}
			if got := w.card.File().EPBalance; got != start-700 {
				t.Fatalf("card holds %d, want one debit of 7.00 from %d", got, start)
			}
			if _, ok := w.till.Armed(); ok {
				t.Fatal("the sale is still armed after it was paid")
			}
		})
	}
}

// TestPurchaseJournalFailureSendsNoDebit: a journal that cannot be
// written when the sale's row is due stops the sale before DEBIT FOR
// PURCHASE: the card is never debited without its row (money rule 2).
func TestPurchaseJournalFailureSendsNoDebit(t *testing.T) {
	w := newPOSWorld(t, 3)
	start := w.card.File().EPBalance
	if _, err := w.till.Arm(700, ""); err != nil {
		t.Fatal(err)
	}
	// The journal fails from the INITIALIZE FOR PURCHASE on: the next
	// write is the sale's row.
	spy := &at{t: w.card, ins: insDebit}
	card := &at{t: spy, ins: insInitialize, kill: func() { w.store.Close() }}
	if _, err := w.tap(t, card); err == nil || !strings.Contains(err.Error(), "journal") {
		t.Fatalf("Charge with the journal failing: %v, want the journal's error", err)
	}
	if spy.sent != 0 {
		t.Fatalf("DEBIT FOR PURCHASE sent %d times without its journal row", spy.sent)
	}
	if got := w.card.File().EPBalance; got != start {
		t.Fatalf("card holds %d, want %d unchanged", got, start)
	}
}

// TestPurchaseDailyLimitCountsOtherTerminals: the card's own log holds the
// purchases it made today at another terminal, which this terminal's
// journal knows nothing of; they count toward the daily limit.
func TestPurchaseDailyLimitCountsOtherTerminals(t *testing.T) {
	w := newPOSWorld(t, 0)
	w.p.DailyLimit = 3000
	other := newPOSWorld(t, 0)
	other.card = w.card
	f, err := psamsim.NewSAMFile([6]byte{0x00, 0x00, 0x00, 0x00, 0x20, 0x09}, testMasters)
	if err != nil {
		t.Fatal(err)
	}
	other.sam = psamsim.NewSimPSAM(f, "")
	for _, amount := range []int64{1000, 1500} {
		if _, err := other.till.Arm(amount, ""); err != nil {
			t.Fatal(err)
		}
		if rep, err := other.tap(t, w.card); err != nil || !rep.Paid {
			t.Fatalf("purchase of %d at the other terminal: %+v, %v", amount, rep, err)
		}
	}
	// 25.00 spent today elsewhere; 6.00 more here is over 30.00.
	if _, err := w.till.Arm(600, ""); err != nil {
		t.Fatal(err)
	}
	rep, err := w.tap(t, w.card)
	if !errors.Is(err, ErrPINRequired) || rep.SpentToday != 2500 || rep.Paid {
		t.Fatalf("sale over the limit with today's purchases made elsewhere: %+v, %v; want pin_required after 25.00", rep, err)
	}
	if got := w.card.File().EPBalance; got != 12345-2500 {
		t.Fatalf("card holds %d", got)
	}
}
