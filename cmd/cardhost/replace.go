package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/money"
)

// cardReplace replaces a lost card: its balance goes to the new card when
// the replacement settles.
type cardReplace struct {
	operatorFlag
	old, new, reason string
	settle           time.Duration
}

func (c *cardReplace) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.old, "old", "", "the lost card, on the deny list already (required)")
	fs.StringVar(&c.new, "new", "", "the card issued to replace it (required)")
	c.operatorFlag.flags(fs)
	fs.StringVar(&c.reason, "reason", "", "why, for the ledger")
	fs.DurationVar(&c.settle, "settle", host.DefaultSettle, "settle window: how long offline terminals have to upload the old card's purchases")
}

func (c *cardReplace) check() error {
	for _, f := range []struct {
		name string
		v    *string
	}{{"old", &c.old}, {"new", &c.new}} {
		if err := parseCard(f.name, f.v); err != nil {
			return err
		}
	}
	if c.settle <= 0 {
		return usagef("--settle = %s: want a duration above 0, like 168h", c.settle)
	}
	return c.operatorFlag.check()
}

func (c *cardReplace) run(ctx context.Context, e *env) error {
	r, err := e.st.Replace(ctx, host.ReplaceRequest{Old: c.old, New: c.new, Settle: c.settle, Reason: c.reason}, c.actor(), time.Now())
	switch {
	case errors.Is(err, host.ErrNotReplaceable), errors.Is(err, host.ErrExists):
		return usageError{err}
	case errors.Is(err, host.ErrNotFound):
		return usagef("%v: issue it here first", err)
	case err != nil:
		return err
	}
	fmt.Fprintf(e.stdout, "card %s replaces card %s: balance known %s; carried as a credit by %s, less the purchases uploaded meanwhile, or earlier once every terminal has synced\n",
		r.New, r.Old, money.Format(r.ReportedFen), r.SettleUntil)
	return nil
}

// printReplacement writes the lines of a card's ledger about the
// replacement it is part of, if any.
func printReplacement(w io.Writer, l host.CardLedger) {
	r := l.Replacement
	if r == nil {
		return
	}
	if r.Old == l.Card.Number {
		fmt.Fprintf(w, "REPLACED by card %s at %s: balance known then %s\n", r.New, r.Replaced, money.Format(r.ReportedFen))
	} else {
		fmt.Fprintf(w, "REPLACES lost card %s (since %s): balance known then %s\n", r.Old, r.Replaced, money.Format(r.ReportedFen))
	}
	if r.State == "settled" {
		fmt.Fprintf(w, "  settled %s (%s): %s carried as credit %s\n", r.Settled, r.SettledWhy, money.Format(r.CreditedFen), dash(r.Credit))
	} else {
		fmt.Fprintf(w, "  settling until %s, or once every terminal has synced\n", r.SettleUntil)
	}
	if r.DebtFen != 0 {
		fmt.Fprintf(w, "  DEBT %s: rows of the old card uploaded after the credit, owed by the holder (alarm raised)\n", money.Format(r.DebtFen))
	}
}
