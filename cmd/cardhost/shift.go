package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/money"
)

// shiftList prints the terminals' closed shifts (班结), newest first, each
// with its check against the journal rows the host holds.
type shiftList struct {
	terminal string
	asJSON   bool
}

func (c *shiftList) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.terminal, "terminal", "", "only this terminal's shifts (12 hex digits)")
	fs.BoolVar(&c.asJSON, "json", false, "print JSON instead of a table")
}

func (c *shiftList) check() error {
	if c.terminal == "" {
		return nil
	}
	id, err := host.CanonicalTerminalID(c.terminal)
	if err != nil {
		return usagef("--terminal = %q: want 12 hex digits", c.terminal)
	}
	c.terminal = id
	return nil
}

func (c *shiftList) run(ctx context.Context, e *env) error {
	list, err := e.st.Shifts(ctx, c.terminal)
	if err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(e.stdout, list)
	}
	tw, flush := newTable(e.stdout)
	fmt.Fprintln(tw, "TERMINAL\tSHIFT\tCASHIER\tCLOSED\tSALES\tSUM\tSPLIT DUE\tPIN\tVOIDS\tIN DOUBT\tCHECK")
	for _, sh := range list {
		s := sh.Summary
		check := sh.Check.State
		if check != host.ShiftOK {
			check = fmt.Sprintf("%s (journal: %d of %d rows, %d sales, %s)", check, sh.Check.Held, sh.Check.Rows, sh.Check.Count, money.Format(sh.Check.SumFen))
		}
		closed := s.Closed
		if t, err := time.Parse(time.RFC3339Nano, closed); err == nil {
			closed = t.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t%d\t%s\n", sh.Terminal, s.Shift, s.Cashier, closed, s.Count, money.Format(s.SumFen),
			money.Format(s.SplitCollectFen), s.PINCount, s.VoidCount, s.InDoubtCount, check)
	}
	return flush()
}
