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
