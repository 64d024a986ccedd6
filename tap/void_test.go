package tap

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/reader"
)

// TestRefundNow: a refund's tap finds the card on whichever card reader
// holds it and loads the credit the host holds for it (the refund, not in
// the pull's cache yet), once; with the card gone it is ErrNoCard and
// loads nothing.
func TestRefundNow(t *testing.T) {
	b, _ := loadNowBench(t)
	b.r.Roles = reader.Roles{Card: regexp.MustCompile("^card")}
	before := b.card.(*epursesim.SimCard).File().EPBalance
	b.r.event(reader.Event{Kind: reader.CardInserted, Reader: "card", Time: time.Now()})
	serveLoadNow(t, b)
	res, err := b.r.RefundNow(context.Background(), testNumber)
	if err != nil || res.Err != nil {
		t.Fatalf("RefundNow: %v, tap %v", err, res.Err)
	}
	if got := loadIDs(res); !slices.Contains(got, "order-1") {
		t.Fatalf("loaded %v; want the credit the host holds (order-1)", got)
	}
	after := b.card.(*epursesim.SimCard).File().EPBalance
	if after != before+15000 {
		t.Fatalf("balance %d → %d; want +150.00 (cr-1 and order-1), each once", before, after)
	}
	if again, _ := b.r.RefundNow(context.Background(), testNumber); len(loadIDs(again)) != 0 {
		t.Fatalf("a second refund tap loaded %v again", loadIDs(again))
	}
	b.r.event(reader.Event{Kind: reader.CardRemoved, Reader: "card", Time: time.Now()})
	if res, err := b.r.RefundNow(context.Background(), testNumber); err != nil || !errors.Is(res.Err, ErrNoCard) {
		t.Fatalf("RefundNow with no card: %v %v; want ErrNoCard", err, res.Err)
	}
}

// A refund's tap charges no sale: one armed meanwhile stays armed for the
// next tap.
func TestRefundTapChargesNothing(t *testing.T) {
	till := &Till{}
	if _, err := till.Arm(500, ""); err != nil {
		t.Fatal(err)
	}
	r := &Runner{Purchaser: &Purchaser{Till: till}}
	res := Result{Read: &CardRead{}}
	ctx := context.WithValue(context.Background(), loadOnlyKey{}, true)
	r.pay(ctx, nil, &res, nil, &afterCard{})
	if res.Purchase != nil || res.Err != nil {
		t.Fatalf("a refund's tap paid: %+v %v", res.Purchase, res.Err)
	}
	if _, armed := till.Armed(); !armed {
		t.Fatal("the armed sale was taken by a refund's tap")
	}
}
