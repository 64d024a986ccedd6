package main

import (
	"fmt"
	"io"

	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/money"
)

// splitRequest is the arm request of `cardd pos charge AMOUNT [--split
// [--cap C]]`; a cap without --split, or not an amount, is a usage error
// (exit 2), before anything is armed.
func splitRequest(fen int64, split bool, capArg string) (localapi.ArmRequest, error) {
	req := localapi.ArmRequest{Amount: money.Format(fen), Split: split}
	if capArg == "" {
		return req, nil
	}
	if !split {
		return req, usageErr("--cap %q is for a split sale: add --split", capArg)
	}
	c, err := money.Parse(capArg)
	if err != nil || c <= 0 || c > fen {
		return req, usageErr("--cap %q: want yuan above 0 and at most the sale's %s, like 20.00", capArg, money.Format(fen))
	}
	req.Cap = money.Format(c)
	return req, nil
}

// printPaid prints the outcome of a tap that settled its sale, and
// reports whether it did: paid, or (a split sale) paid in part or left
// all to collect.
func printPaid(w io.Writer, v *localapi.TapView) bool {
	if printSplit(w, v) {
		return true
	}
	if p := v.Purchase; p.Paid {
		what := p.Amount
		if p.Period != "" {
			what += " (" + p.Period + ")"
		}
		if d := p.Discount; d != nil {
			what += fmt.Sprintf(" (list %s less %s: %s pays %d%%)", d.List, d.Discount, d.Class, d.Percent)
		}
		fmt.Fprintf(w, "paid %s: balance %s, journal %s\n", what, v.BalanceAfter, p.JournalID)
		return true
	}
	return false
}

// printSplit prints the outcome of a split sale's tap, and reports whether
// it settled the sale: the card's part paid, or a card that held nothing
// (the whole sale to collect). A tap that did neither is printed by the
// caller like any other.
func printSplit(w io.Writer, v *localapi.TapView) bool {
	p := v.Purchase
	if p == nil || p.Split == nil || (!p.Paid && (v.Outcome != "ok" || p.Split.CardFen != 0)) {
		return false
	}
	s := p.Split
	if !p.Paid {
		fmt.Fprintf(w, "card paid 0.00 (balance %s): collect %s by other means (sale %s)\n", v.BalanceAfter, s.Collect, money.Format(s.SaleFen))
		return true
	}
	fmt.Fprintf(w, "paid %s by card: collect %s by other means (sale %s); balance %s, journal %s\n",
		s.CardPaid, s.Collect, money.Format(s.SaleFen), v.BalanceAfter, p.JournalID)
	return true
}
