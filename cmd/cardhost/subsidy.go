package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/money"
)

// subsidyAdd creates a subsidy batch: one credit per card, for the purse
// and the pick-up window given.
type subsidyAdd struct {
	id, amount, purse, from, until, note, file string
	cards                                      []string
	batch                                      host.NewSubsidy // checked
}

func (c *subsidyAdd) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.id, "id", "", "the batch's id; adding an id that exists changes nothing (default: one made up)")
	fs.StringVar(&c.amount, "amount", "", "amount per card in yuan, like 12.00 (required)")
	fs.StringVar(&c.purse, "purse", "EP", "the purse it loads onto: EP, or ED")
	fs.StringVar(&c.from, "from", "", "start of the pick-up window: 2026-12-01, 2026-12-01T11:00 (local time) or RFC 3339 (default now)")
	fs.StringVar(&c.until, "until", "", "its expiry, as --from: undelivered after it, the credit is withdrawn (required)")
	fs.StringVar(&c.note, "note", "", "what it is for, as terminals and receipts show it")
	fs.StringVar(&c.file, "cards", "", "a file of card numbers, one a line ('#' starts a comment), besides those given as arguments")
}

func (c *subsidyAdd) args(a []string) { c.cards = a }

func (c *subsidyAdd) check() error {
	if err := required("amount", c.amount); err != nil {
		return err
	}
	fen, err := money.Parse(c.amount)
	if err != nil || fen <= 0 || fen > epurse.MaxAmount {
		return usagef("--amount = %q: want an amount like 12.00, more than 0.00", c.amount)
	}
	var p epurse.Purse
	switch strings.ToUpper(c.purse) {
	case "EP":
		p = epurse.PurseEP
	case "ED":
		p = epurse.PurseED
	default:
		return usagef("--purse = %q: want EP or ED", c.purse)
	}
	from := time.Now()
	if c.from != "" {
		if from, err = parseWhen(c.from); err != nil {
			return usagef("--from = %q: %v", c.from, err)
		}
	}
	if err := required("until", c.until); err != nil {
		return err
	}
	until, err := parseWhen(c.until)
	if err != nil {
		return usagef("--until = %q: %v", c.until, err)
	}
	cards := append([]string(nil), c.cards...)
	if c.file != "" {
		more, err := readCardFile(c.file)
		if err != nil {
			return usagef("--cards = %q: %v", c.file, err)
		}
		cards = append(cards, more...)
	}
	if len(cards) == 0 {
		return usagef("no cards: give card numbers as arguments, or --cards FILE")
	}
	for _, n := range cards {
		if err := host.CheckCardNumber(n); err != nil {
			return usagef("card %q: %v", n, err)
		}
	}
	c.batch = host.NewSubsidy{ID: c.id, AmountFen: fen, Purse: p, NotBefore: from, Expires: until, Note: c.note, Cards: cards}
	return nil
}

// whenLayouts are the times --from and --until take besides RFC 3339, in
// the operator's local time.
var whenLayouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"}

func parseWhen(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, l := range whenLayouts {
		if t, err := time.ParseInLocation(l, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("want a time like 2026-12-01, 2026-12-01T11:00 (local) or 2026-12-01T11:00:00+08:00")
}

// readCardFile reads card numbers, one a line; blank lines and '#'
// comments are skipped.
func readCardFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s, _, _ := strings.Cut(sc.Text(), "#")
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if err := host.CheckCardNumber(s); err != nil {
			return nil, fmt.Errorf("line %d: %v", line, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func (c *subsidyAdd) run(ctx context.Context, e *env) error {
	b, added, err := e.st.AddSubsidy(ctx, c.batch, operator(), time.Now())
	if errors.Is(err, host.ErrNotFound) {
		return fmt.Errorf("%w: issue every card of the batch first with 'cardhost card issue'", err)
	}
	if err != nil {
		return err
	}
	if !added {
		fmt.Fprintf(e.stdout, "subsidy %s exists already (added %s, %d cards): nothing changed\n", b.ID, b.Created, b.Cards)
		return nil
	}
	fmt.Fprintf(e.stdout, "subsidy %s: %s onto the %s purse of %d cards, from %s until %s\n",
		b.ID, money.Format(b.AmountFen), b.Purse, b.Cards, b.NotBefore, b.Expires)
	return nil
}

// subsidyList prints the batches and what became of them.
type subsidyList struct{ asJSON bool }

func (c *subsidyList) flags(fs *pflag.FlagSet) {
	fs.BoolVar(&c.asJSON, "json", false, "print JSON instead of a table")
}

func (c *subsidyList) check() error { return nil }

func (c *subsidyList) run(ctx context.Context, e *env) error {
	list, err := e.st.Subsidies(ctx)
	if err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(e.stdout, list)
	}
	tw, flush := newTable(e.stdout)
	fmt.Fprintln(tw, "SUBSIDY\tAMOUNT\tPURSE\tFROM\tUNTIL\tCARDS\tDELIVERED\tPENDING\tWITHDRAWN\tNOTE")
	for _, b := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", b.ID, money.Format(b.AmountFen), b.Purse, b.NotBefore, b.Expires,
			b.Cards, b.Delivered, b.Pending, b.Withdrawn, dash(b.Note))
	}
	return flush()
}

// subsidyExpire runs the withdrawal of expired subsidies once, as serve
// does every subsidyExpiryEvery.
type subsidyExpire struct{ noCheck }

func (c *subsidyExpire) flags(*pflag.FlagSet) {}

func (c *subsidyExpire) run(ctx context.Context, e *env) error {
	n, err := e.st.WithdrawExpiredSubsidies(ctx, operator(), time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%d expired subsidy credits withdrawn\n", n)
	return nil
}

// subsidyExpiryEvery is how often serve withdraws expired subsidies.
// Authorize refuses an expired one by itself; the job is what tells the
// terminals to drop it and the ledger that it is gone.
const subsidyExpiryEvery = time.Minute

// runSubsidyExpiry withdraws expired subsidies until ctx is done; each run
// is bounded.
func runSubsidyExpiry(ctx context.Context, st *host.Store, every time.Duration, logf func(msg string, args ...any)) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		n, err := st.WithdrawExpiredSubsidies(rctx, "host", time.Now())
		cancel()
		if err != nil && ctx.Err() == nil {
			logf("withdrawing expired subsidies", "withdrawn", n, "err", err)
		}
	}
}
