package tap

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
)

// tunionCard is a card read as a T-Union card (its issuer id is not ours,
// it answers the T-Union name) whose EP purse holds purse and whose second
// purse holds second: it spends purse-second.
func tunionCard(t *testing.T, purse, second int64) *epursesim.SimCard {
	t.Helper()
	return newTestCard(t, "", 0, func(cf *epursesim.CardFile) {
		cf.Info.IssuerID = epursesim.TUnionSimIssuerID
		cf.AID = hex.EncodeToString(epurse.AIDTUnion)
		cf.EPBalance = purse
		cf.SecondPurse = &second
	})
}

// unresolvedPurchase journals a purchase of this card whose DEBIT never
// reached it (its counter is the card's offline counter now), as a tap cut
// off before the answer leaves it.
func unresolvedPurchase(t *testing.T, store *offline.Store, cr *CardRead, counter uint16) {
	t.Helper()
	if _, err := store.Begin(context.Background(), offline.Row{
		Kind: offline.KindPurchase, State: offline.StateIntent, Card: cr.Info.CardNumber, Purse: cr.Purse.String(),
		Counter: counter, BalanceFen: cr.PurseBalance, AmountFen: 100, TermSerial: 1,
		Time: "20261123115900",
	}); err != nil {
		t.Fatal(err)
	}
}

// TestPurchaseAfterRecoveryCountsSecondPurse: a T-Union card whose second
// purse leaves 3.45 to spend of a 123.45 purse is tapped with an unfinished
// purchase to settle first. Settling re-reads the balance; the sale of 10.00
// must still be refused as more than the card holds, not checked against
// the purse alone.
func TestPurchaseAfterRecoveryCountsSecondPurse(t *testing.T) {
	w := newPOSWorld(t, 0)
	w.card = tunionCard(t, 12345, 12000)
	cr, err := ReadPurse(w.card, ReadOptions{}, nil)
	if err != nil || cr.Profile != epurse.ProfileTUnion || cr.Balance != 345 {
		t.Fatalf("read: %+v, %v", cr, err)
	}
	unresolvedPurchase(t, w.store, cr, w.card.File().EPOfflineCounter)
	if _, err := w.till.Arm(1000, ""); err != nil {
		t.Fatal(err)
	}
	rep, err := w.tap(t, w.card)
	if !errors.Is(err, ErrInsufficientBalance) || rep.Paid || len(rep.Recovered) != 1 {
		t.Fatalf("tap: %+v, %v; want the recovery, then the sale refused for the balance", rep, err)
	}
	if rep.Balance != 345 {
		t.Errorf("balance after the recovery %d, want 345 (the purse less the second purse)", rep.Balance)
	}
	if got := w.card.File().EPBalance; got != 12345 {
		t.Fatalf("card purse %d: a sale over what the card spends was debited", got)
	}
}

// TestLoadRecoveryShowsWhatTheCardSpends: the same card with an unfinished
// load to settle: the balance the load reports afterwards (the kiosk's, the
// receipt's) is the purse less the second purse, as the read showed it.
func TestLoadRecoveryShowsWhatTheCardSpends(t *testing.T) {
	w := newLoadWorld(t)
	w.card = tunionCard(t, 12345, 12000)
	w.host = newFakeLoadHost(t, w.card)
	w.l.Host = w.host
	// The host authorized the load the journal row is of.
	w.host.auth["cr-x"] = hostapi.LoadAuthorizeRequest{CreditID: "cr-x", OnlineCounter: w.card.File().EPOnlineCounter}
	cr, err := ReadPurse(w.card, ReadOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.Begin(context.Background(), offline.Row{
		Kind: offline.KindLoad, State: offline.StateIntent, Card: cr.Info.CardNumber, Purse: cr.Purse.String(),
		Counter: w.card.File().EPOnlineCounter, BalanceFen: cr.PurseBalance, AmountFen: 100, CreditID: "cr-x",
		MAC2: "00000000", Time: "20261123115900",
	}); err != nil {
		t.Fatal(err)
	}
	rep, err := w.tap(t, w.card)
	if err != nil || len(rep.Recovered) != 1 {
		t.Fatalf("tap: %+v, %v", rep, err)
	}
	if rep.Balance != 345 {
		t.Fatalf("balance after the recovery %d, want 345 (the purse less the second purse)", rep.Balance)
	}
}

// TestBalanceAfterSaleAndLoadCountsSecondPurse: the balance a sale and a
// load report afterwards (the receipt's, the kiosk's) is what the card
// spends, the purse less its second purse, as the read showed it: not the
// purse the card's INITIALIZE answered.
func TestBalanceAfterSaleAndLoadCountsSecondPurse(t *testing.T) {
	w := newPOSWorld(t, 0)
	w.card = tunionCard(t, 12345, 12000)
	if _, err := w.till.Arm(300, ""); err != nil {
		t.Fatal(err)
	}
	rep, err := w.tap(t, w.card)
	if err != nil || !rep.Paid {
		t.Fatalf("sale: %+v, %v", rep, err)
	}
	if rep.Balance != 45 {
		t.Errorf("balance after a 3.00 sale %d, want 45", rep.Balance)
	}

	l := newLoadWorld(t)
	l.card = tunionCard(t, 12345, 12000)
	l.host = newFakeLoadHost(t, l.card)
	l.l.Host = l.host
	cr, err := ReadPurse(l.card, ReadOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.host.credits = []hostapi.Credit{{ID: "cr-1", Card: cr.Info.CardNumber, AmountFen: 100, State: hostapi.CreditPending}}
	lrep, err := l.tap(t, l.card)
	if err != nil || len(lrep.Loads) != 1 || !lrep.Loads[0].Applied {
		t.Fatalf("load: %+v, %v", lrep, err)
	}
	if lrep.Balance != 445 || lrep.Loads[0].NewBalance != 445 {
		t.Errorf("balance after a 1.00 load %d (credit's %d), want 445", lrep.Balance, lrep.Loads[0].NewBalance)
	}
}

// TestLoadCapCountsThePurse: load.balance_cap is the most a card may hold
// after a top-up, and the host checks it on the purse. A T-Union card whose
// second purse makes it show 982.00 while its purse holds 990.00 must not be
// loaded 15.00 past the 1000.00 cap: the credit waits, nothing reaches the
// card.
func TestLoadCapCountsThePurse(t *testing.T) {
	w := newLoadWorld(t)
	w.card = tunionCard(t, 99000, 800)
	w.host = newFakeLoadHost(t, w.card)
	w.l.Host, w.l.BalanceCap = w.host, 100000
	cr, err := ReadPurse(w.card, ReadOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.host.credits = []hostapi.Credit{{ID: "cr-1", Card: cr.Info.CardNumber, AmountFen: 1500, State: hostapi.CreditPending}}
	rep, err := w.tap(t, w.card)
	if err != nil || len(rep.Loads) != 1 {
		t.Fatalf("tap: %+v, %v", rep, err)
	}
	if ld := rep.Loads[0]; ld.Applied || !strings.Contains(ld.Refused, "balance cap") {
		t.Fatalf("credit past the cap: %+v, want it waiting for the cap", ld)
	}
	if got := w.card.File().EPBalance; got != 99000 {
		t.Fatalf("card purse %d, want 99000 untouched", got)
	}
}

// TestRecoveryAsksACardItsSecondPurseEmpties: a T-Union card whose second
// purse equals its purse shows 0.00, but its purse holds money, so its
// offline counter can be asked (INITIALIZE FOR PURCHASE changes nothing):
// a purchase whose DEBIT never reached it is settled from the card as not
// having happened (money rule 3), not left in doubt for the host.
func TestRecoveryAsksACardItsSecondPurseEmpties(t *testing.T) {
	w := newPOSWorld(t, 0)
	w.card = tunionCard(t, 12345, 12345)
	cr, err := ReadPurse(w.card, ReadOptions{}, nil)
	if err != nil || cr.Balance != 0 {
		t.Fatalf("read: balance %d, %v", cr.Balance, err)
	}
	unresolvedPurchase(t, w.store, cr, w.card.File().EPOfflineCounter)
	rep, err := w.tap(t, w.card)
	if err != nil || len(rep.Recovered) != 1 || rep.Recovered[0].Applied {
		t.Fatalf("tap: %+v, %v; want the purchase settled as not applied", rep, err)
	}
}
