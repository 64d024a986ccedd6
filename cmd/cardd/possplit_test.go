package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/cardd/cardd/localapi"
)

// TestSplitRequest: --cap needs --split and an amount in (0, sale]; a bad
// one is a usage error (exit 2) before anything is armed.
func TestSplitRequest(t *testing.T) {
	for _, tc := range []struct {
		split bool
		cap   string
		in    string
	}{
		{false, "10.00", "add --split"},
		{true, "abc", "want yuan above 0"},
		{true, "0", "want yuan above 0"},
		{true, "30.01", "at most the sale's 30.00"},
	} {
		_, err := splitRequest(3000, tc.split, tc.cap)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tc.in) {
			t.Errorf("split %v cap %q: %v, want exit 2 with %q", tc.split, tc.cap, err, tc.in)
		}
	}
	req, err := splitRequest(3000, true, "20")
	if err != nil || req != (localapi.ArmRequest{Amount: "30.00", Split: true, Cap: "20.00"}) {
		t.Fatalf("--split --cap 20: %+v %v", req, err)
	}
	if req, err := splitRequest(3000, false, ""); err != nil || req.Split || req.Cap != "" {
		t.Fatalf("no split: %+v %v", req, err)
	}
}

// TestPrintSplit: the outcome of a split sale's tap names the card's part
// and the rest to collect, also when the card held nothing.
func TestPrintSplit(t *testing.T) {
	var b strings.Builder
	v := &localapi.TapView{Outcome: "ok", BalanceAfter: "0.00", Purchase: &localapi.PurchaseView{Paid: true, JournalID: "j-1",
		Split: &localapi.SplitView{SaleFen: 3000, CardFen: 1840, CardPaid: "18.40", CollectFen: 1160, Collect: "11.60"}}}
	if !printSplit(&b, v) || !strings.Contains(b.String(), "paid 18.40 by card: collect 11.60 by other means (sale 30.00); balance 0.00, journal j-1") {
		t.Fatalf("paid split: %q", b.String())
	}
	b.Reset()
	v.Purchase = &localapi.PurchaseView{Split: &localapi.SplitView{SaleFen: 3000, CardPaid: "0.00", CollectFen: 3000, Collect: "30.00"}}
	if !printSplit(&b, v) || !strings.Contains(b.String(), "card paid 0.00 (balance 0.00): collect 30.00 by other means") {
		t.Fatalf("empty card: %q", b.String())
	}
	// Refused (a PIN asked): not settled, the caller prints the refusal.
	v.Outcome, v.Purchase.Split.CardFen = "pin_required", 1840
	if printSplit(&b, v) {
		t.Fatal("a refused split tap printed as settled")
	}
}
