package tap

import (
	"context"
	"testing"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
)

// TestCloseExpiredCard: a card past its product's last valid day (a
// graduating student's campus card, the very card a holder brings to be
// closed) neither loads nor pays, but the host's close of it still runs:
// its whole balance is debited once, as the closing debit owed back by the
// host; the armed sale stays armed. Its next tap is refused as closed.
func TestCloseExpiredCard(t *testing.T) {
	card := newTestCard(t, "王小明", 3, nil)
	before := card.File().EPBalance
	b := floorBench(t, card, 1250)
	b.r.Purchaser.CloseCards = true
	page := offline.PullPage{Products: []offline.Product{{Name: "campus", CapFen: 100000, ValidUntil: "2026-11-22"}},
		CardProducts: []offline.ProductChange{{Card: testNumber, Product: "campus"}},
		Closes:       []offline.CloseChange{{Card: testNumber, ID: hostapi.CloseID(testNumber)}}, Cursor: "1"}
	if err := b.store.ApplyPage(context.Background(), page); err != nil {
		t.Fatal(err)
	}
	res := b.tap()
	if res.Err != nil || res.Purchase == nil || res.Purchase.Close == nil || !res.Purchase.Close.Closed || res.Purchase.Close.RefundFen != before {
		t.Fatalf("closing tap of an expired card: %s", summary(res))
	}
	if got := card.File().EPBalance; got != 0 {
		t.Fatalf("card holds %d after its close, want 0", got)
	}
	if _, ok := b.r.Purchaser.Till.Armed(); !ok {
		t.Fatal("the armed sale was taken by the closing card")
	}
	card.Reset()
	again := b.tap()
	if again.Outcome() != OutcomeDenied && again.Outcome() != OutcomeExpired {
		t.Fatalf("next tap: %s; want refused", summary(again))
	}
	if got := card.File().EPBalance; got != 0 {
		t.Fatalf("card holds %d after the next tap", got)
	}
	var done int
	rows, _ := b.store.List(context.Background(), 0, 100)
	for _, r := range rows {
		if r.CreditID == hostapi.CloseID(testNumber) && r.State == offline.StateDone && r.Kind == offline.KindPurchase {
			done++
		}
	}
	if done != 1 {
		t.Fatalf("%d closing debits done, want 1:\n%v", done, b.trace)
	}
}
