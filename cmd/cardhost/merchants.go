package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/host"
)

// terminalMerchant names the merchant a terminal sells for, for the daily
// report's per-merchant sums.
type terminalMerchant struct {
	id, merchant string
	clear        bool
	canon        string // id, checked
}

func (c *terminalMerchant) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.id, "id", "", "the terminal's id, 12 hex digits (required)")
	fs.StringVar(&c.merchant, "set", "", "the merchant's name, like 一食堂 (at most 64 characters)")
	fs.BoolVar(&c.clear, "clear", false, "the terminal sells for no merchant")
}

func (c *terminalMerchant) check() error {
	if err := required("id", c.id); err != nil {
		return err
	}
	canon, err := host.CanonicalTerminalID(c.id)
	if err != nil {
		return usagef("--id = %q: want 12 hex digits, like 000000000001", c.id)
	}
	c.canon = canon
	switch {
	case c.clear && c.merchant != "":
		return usagef("--set and --clear: give one")
	case !c.clear && c.merchant == "":
		return usagef("give --set NAME or --clear")
	}
	if err := host.CheckMerchant(c.merchant); err != nil {
		return usagef("--set: %v", err)
	}
	return nil
}

func (c *terminalMerchant) run(ctx context.Context, e *env) error {
	if err := e.st.SetTerminalMerchant(ctx, c.canon, c.merchant, time.Now()); err != nil {
		if errors.Is(err, host.ErrNotFound) {
			return usagef("--id = %q: %v", c.id, err)
		}
		return err
	}
	if c.clear {
		fmt.Fprintf(e.stdout, "terminal %s: no merchant\n", c.canon)
		return nil
	}
	fmt.Fprintf(e.stdout, "terminal %s sells for %s\n", c.canon, c.merchant)
	return nil
}
