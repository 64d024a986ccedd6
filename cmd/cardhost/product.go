package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
)

// maxCapFen is the highest product cap: what the card's 4-byte balance
// field holds.
const maxCapFen = 0xFFFFFFFF

// productFlags are the flags a product is described by, in add and set.
type productFlags struct {
	fs                      *pflag.FlagSet
	name, capText, until    string
	replaceable, refundable bool

	capFen int64 // checked from capText
}

func (p *productFlags) flags(fs *pflag.FlagSet) {
	p.fs = fs
	fs.StringVar(&p.name, "name", "", "the product's name: lower case, like gift (required)")
	fs.StringVar(&p.capText, "cap", "", "the most a card of it may hold after a load, in yuan, like 1000.00")
	fs.BoolVar(&p.replaceable, "replaceable", false, "a lost card of it may be replaced with its balance")
	fs.BoolVar(&p.refundable, "refundable", false, "its balance is refunded when the card is closed")
	fs.StringVar(&p.until, "valid-until", "", "the last day a card of it loads or pays, YYYY-MM-DD; empty for no end")
}

// check refuses a bad --name, --cap or --valid-until, naming the flag and
// its value; a flag not given is not checked (set leaves it as it is).
func (p *productFlags) check(capRequired bool) error {
	if err := required("name", p.name); err != nil {
		return err
	}
	if err := hostapi.CheckProductName(p.name); err != nil {
		return usagef("--name = %q: %v", p.name, err)
	}
	if capRequired || p.fs.Changed("cap") {
		fen, err := money.Parse(p.capText)
		if err != nil || fen <= 0 || fen > maxCapFen {
			return usagef("--cap = %q: want an amount in yuan like 1000.00, more than 0.00 and at most %s", p.capText, money.Format(maxCapFen))
		}
		p.capFen = fen
	}
	if err := hostapi.CheckValidUntil(p.until); err != nil {
		return usagef("--valid-until = %q: %v", p.until, err)
	}
	return nil
}

// productAdd creates an operator's product.
type productAdd struct{ productFlags }

func (c *productAdd) check() error { return c.productFlags.check(true) }

func (c *productAdd) run(ctx context.Context, e *env) error {
	p := hostapi.Product{Name: c.name, CapFen: c.capFen, Replaceable: c.replaceable, Refundable: c.refundable, ValidUntil: c.until}
	err := e.st.AddProduct(ctx, p, operator(), time.Now())
	if errors.Is(err, host.ErrExists) {
		return usagef("--name = %q: a product of that name exists; change it with 'cardhost product set'", c.name)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "product %s: cap %s, %s\n", p.Name, money.Format(p.CapFen), describeProduct(p))
	return nil
}

// productSet changes the flags given of a product; terminals learn the
// change at their next pull.
type productSet struct{ productFlags }

func (c *productSet) check() error {
	if err := c.productFlags.check(false); err != nil {
		return err
	}
	for _, f := range []string{"cap", "replaceable", "refundable", "valid-until"} {
		if c.fs.Changed(f) {
			return nil
		}
	}
	return usagef("give what to change: --cap, --replaceable, --refundable or --valid-until")
}

func (c *productSet) run(ctx context.Context, e *env) error {
	var edit host.ProductEdit
	if c.fs.Changed("cap") {
		edit.CapFen = &c.capFen
	}
	if c.fs.Changed("replaceable") {
		edit.Replaceable = &c.replaceable
	}
	if c.fs.Changed("refundable") {
		edit.Refundable = &c.refundable
	}
	if c.fs.Changed("valid-until") {
		edit.ValidUntil = &c.until
	}
	p, err := e.st.SetProduct(ctx, c.name, edit, operator(), time.Now())
	if errors.Is(err, host.ErrNotFound) {
		return usagef("--name = %q: no such product ('cardhost product list')", c.name)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "product %s: cap %s, %s; terminals learn it at their next pull\n", p.Name, money.Format(p.CapFen), describeProduct(p.Product))
	return nil
}

// describeProduct says what a card of p may and may not do, in words.
func describeProduct(p hostapi.Product) string {
	s := "not replaceable"
	if p.Replaceable {
		s = "replaceable"
	}
	if p.Refundable {
		s += ", refundable on closing"
	} else {
		s += ", not refundable on closing"
	}
	if p.ValidUntil != "" {
		s += ", valid until " + p.ValidUntil
	}
	return s
}

// productList prints the products.
type productList struct {
	noCheck
	asJSON bool
}

func (c *productList) flags(fs *pflag.FlagSet) {
	fs.BoolVar(&c.asJSON, "json", false, "print JSON (caps in fen) instead of a table")
}

func (c *productList) run(ctx context.Context, e *env) error {
	ps, err := e.st.Products(ctx)
	if err != nil {
		return err
	}
	if c.asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ps)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PRODUCT\tCAP\tREPLACEABLE\tREFUNDABLE\tVALID UNTIL\tUPDATED BY")
	for _, p := range ps {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, money.Format(p.CapFen), yesNo(p.Replaceable), yesNo(p.Refundable), dash(p.ValidUntil), p.Actor)
	}
	return w.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// cardProduct shows or sets the product (卡种) of a card record.
type cardProduct struct {
	cardFlag
	set string
}

func (c *cardProduct) flags(fs *pflag.FlagSet) {
	c.cardFlag.flags(fs)
	fs.StringVar(&c.set, "set", "", "the product to put the card on ('cardhost product list'); without it, show the card's")
}

func (c *cardProduct) check() error {
	if err := c.cardFlag.check(); err != nil {
		return err
	}
	if c.set != "" {
		if err := hostapi.CheckProductName(c.set); err != nil {
			return usagef("--set = %q: %v", c.set, err)
		}
	}
	return nil
}

func (c *cardProduct) run(ctx context.Context, e *env) error {
	if c.set == "" {
		p, err := e.st.CardProduct(ctx, c.number)
		if errors.Is(err, host.ErrNotFound) {
			return usagef("--card = %q: not a card this host issued", c.number)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "card %s: product %s, cap %s, %s\n", c.number, p.Name, money.Format(p.CapFen), describeProduct(p.Product))
		return nil
	}
	changed, err := e.st.SetCardProduct(ctx, c.number, c.set, operator(), time.Now())
	if errors.Is(err, host.ErrNotFound) {
		if _, cerr := e.st.Card(ctx, c.number); errors.Is(cerr, host.ErrNotFound) {
			return usagef("--card = %q: not a card this host issued", c.number)
		}
		return usagef("--set = %q: no such product ('cardhost product list')", c.set)
	}
	if err != nil {
		return err
	}
	if !changed {
		fmt.Fprintf(e.stdout, "card %s has product %s already\n", c.number, c.set)
		return nil
	}
	fmt.Fprintf(e.stdout, "card %s: product %s; terminals learn it at their next pull\n", c.number, c.set)
	return nil
}
