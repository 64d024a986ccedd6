package main

import (
	"strings"
	"testing"

	"github.com/cardd/cardd/localapi"
)

// TestPrintDiscount: the outcome of a discounted sale names the list
// price, the amount off and the class's percent beside the amount paid.
func TestPrintDiscount(t *testing.T) {
	var b strings.Builder
	v := &localapi.TapView{Outcome: "ok", BalanceAfter: "92.01", Purchase: &localapi.PurchaseView{Paid: true, JournalID: "j-2", Amount: "7.99",
		Discount: &localapi.DiscountView{Class: "student", Percent: 80, ListFen: 999, List: "9.99", DiscountFen: 200, Discount: "2.00"}}}
	if !printPaid(&b, v) || b.String() != "paid 7.99 (list 9.99 less 2.00: student pays 80%): balance 92.01, journal j-2\n" {
		t.Fatalf("printed %q", b.String())
	}
}
