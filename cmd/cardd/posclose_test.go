package main

import (
	"strings"
	"testing"

	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/tap"
)

// TestPrintClose: a closing tap prints the refund due; one in doubt says
// to tap the card again; a card closed before says it was not served.
func TestPrintClose(t *testing.T) {
	for _, c := range []struct {
		v    localapi.TapView
		want string
	}{
		{localapi.TapView{Outcome: "ok", Purchase: &localapi.PurchaseView{Close: &localapi.CloseView{RefundDue: "45.60", JournalID: "000000000001-3", Closed: true}}},
			"refund due 45.60"},
		{localapi.TapView{Outcome: string(tap.OutcomeSaleInDoubt), Error: "no answer", Purchase: &localapi.PurchaseView{Close: &localapi.CloseView{RefundDue: "45.60"}}},
			"IN DOUBT"},
		{localapi.TapView{Outcome: string(tap.OutcomeDenied), Error: "closed", Purchase: &localapi.PurchaseView{Close: &localapi.CloseView{RefundDue: "45.60"}}},
			"card not served (card_denied)"},
	} {
		var b strings.Builder
		printClose(&b, &c.v)
		if !strings.Contains(b.String(), c.want) {
			t.Errorf("%s: printed %q, want %q", c.v.Outcome, b.String(), c.want)
		}
	}
}

// TestOfSale: the armed sale's tap is its own; a closing card's tap is
// printed and not the sale's; another sale's tap is not.
func TestOfSale(t *testing.T) {
	var b strings.Builder
	closing := &localapi.TapView{Outcome: "ok", Purchase: &localapi.PurchaseView{Close: &localapi.CloseView{RefundDue: "45.60", Closed: true}}}
	if ofSale(&b, closing, "s1") || !strings.Contains(b.String(), "refund due 45.60") {
		t.Fatalf("a closing tap: printed %q", b.String())
	}
	if !ofSale(&b, &localapi.TapView{Purchase: &localapi.PurchaseView{SaleID: "s1"}}, "s1") {
		t.Fatal("the sale's own tap")
	}
	if ofSale(&b, &localapi.TapView{Purchase: &localapi.PurchaseView{SaleID: "s2"}}, "s1") || ofSale(&b, &localapi.TapView{}, "s1") {
		t.Fatal("another sale's tap, or a tap with no purchase")
	}
}
