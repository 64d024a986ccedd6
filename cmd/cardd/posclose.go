package main

import (
	"fmt"
	"io"

	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/tap"
)

// printClose prints a tap of a card the host asked to close, which took
// no sale: the refund due to its holder, or why the card is not closed on
// this tap.
func printClose(w io.Writer, v *localapi.TapView) {
	c := v.Purchase.Close
	switch {
	case c.Closed:
		fmt.Fprintf(w, "card closed (销户): refund due %s to its holder (journal %s); the sale stays armed for the next card\n", c.RefundDue, c.JournalID)
	case v.Outcome == string(tap.OutcomeSaleInDoubt):
		fmt.Fprintf(w, "card closing IN DOUBT: its closing debit did not answer; tap the same card again to settle it (%s)\n", v.Error)
	default:
		fmt.Fprintf(w, "card not served (%s): %s\n", v.Outcome, v.Error)
	}
}

// ofSale reports whether tap v is about the sale armed as id. A card
// closing (销户) takes no sale: its tap is printed, for the cashier to
// tell the holder the refund due, and the sale waits.
func ofSale(w io.Writer, v *localapi.TapView, id string) bool {
	p := v.Purchase
	if p != nil && p.Close != nil {
		printClose(w, v)
		return false
	}
	return p != nil && p.SaleID == id
}
