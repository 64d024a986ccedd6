package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
)

// cardClose asks to close a card (销户): its next tap at a terminal that
// closes cards debits its balance, which the host then records as the
// refund due.
type cardClose struct {
	cardFlag
	operatorFlag
	reason string
}

func (c *cardClose) flags(fs *pflag.FlagSet) {
	c.cardFlag.flags(fs)
	c.operatorFlag.flags(fs)
	fs.StringVar(&c.reason, "reason", "", "why the card closes, for the ledger (required): graduated, left, …")
}

func (c *cardClose) check() error {
	if err := c.cardFlag.check(); err != nil {
		return err
	}
	if err := c.operatorFlag.check(); err != nil {
		return err
	}
	return required("reason", c.reason)
}

func (c *cardClose) run(ctx context.Context, e *env) error {
	changed, err := e.st.CloseCard(ctx, c.number, c.actor(), c.reason, time.Now())
	if refused, ok := errors.AsType[*host.CloseRefusedError](err); ok {
		return usageError{refused}
	}
	if errors.Is(err, host.ErrNotFound) {
		return usagef("--card = %q: not a card this host issued", c.number)
	}
	if err != nil {
		return err
	}
	if !changed {
		fmt.Fprintf(e.stdout, "card %s is waiting to be closed already\n", c.number)
		return nil
	}
	fmt.Fprintf(e.stdout, "card %s will close: terminals learn it at their next pull; its next tap at a POS or kiosk debits its balance, which then shows in 'cardhost refunds due'\n", c.number)
	return nil
}

// closeList lists closes: all, or those in one state ('refunds due' is
// the closed ones).
type closeList struct {
	state  string
	asJSON bool
}

func (c *closeList) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.state, "state", "", "only closes in this state: pending or closed")
	fs.BoolVar(&c.asJSON, "json", false, "print JSON (amounts in fen) instead of a table")
}

func (c *closeList) check() error {
	switch c.state {
	case "", host.ClosePending, host.CloseClosed:
		return nil
	}
	return usagef("--state = %q: want pending or closed", c.state)
}

func (c *closeList) run(ctx context.Context, e *env) error {
	list, err := e.st.Closes(ctx, c.state)
	if err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(e.stdout, list)
	}
	tw, flush := newTable(e.stdout)
	fmt.Fprintln(tw, "CARD\tHOLDER\tSTATE\tREFUND DUE\tASKED BY\tREASON\tASKED\tCLOSED\tTERMINAL\tROW\tTAC")
	for _, cl := range list {
		refund := "-"
		if cl.RefundFen != nil {
			refund = money.Format(*cl.RefundFen)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", redact.CardNumber(cl.Card), cl.Holder, cl.State, refund,
			cl.Operator, cl.Reason, cl.Requested, dash(cl.Closed), dash(cl.Terminal), dash(cl.JournalID), dash(cl.TACCheck))
	}
	return flush()
}

// refundsDue lists the refunds due: the closed cards' balances.
type refundsDue struct{ closeList }

func (c *refundsDue) check() error {
	c.state = host.CloseClosed
	return nil
}

func (c *refundsDue) flags(fs *pflag.FlagSet) {
	fs.BoolVar(&c.asJSON, "json", false, "print JSON (amounts in fen) instead of a table")
}
