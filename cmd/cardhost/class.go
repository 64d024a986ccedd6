package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
)

// cardClass sets or clears the identity class (身份) of a card record,
// which terminals pull like the deny list.
type cardClass struct {
	cardFlag
	class string
	clear bool
}

func (c *cardClass) flags(fs *pflag.FlagSet) {
	c.cardFlag.flags(fs)
	fs.StringVar(&c.class, "class", "", "the card's identity class, as the terminals' pos.classes name it: student, staff, …")
	fs.BoolVar(&c.clear, "clear", false, "clear the card's class: terminals go by its card type byte again")
}

func (c *cardClass) check() error {
	if err := c.cardFlag.check(); err != nil {
		return err
	}
	switch {
	case c.clear && c.class != "":
		return usagef("--class = %q and --clear: give one", c.class)
	case c.clear:
		return nil
	case c.class == "":
		return usagef("--class is required (or --clear)")
	}
	return checkClassFlag(c.class)
}

// checkClassFlag refuses a --class the terminals could never name.
func checkClassFlag(class string) error {
	if err := hostapi.CheckClassName(class); err != nil {
		return usagef("--class = %q: %v", class, err)
	}
	return nil
}

func (c *cardClass) run(ctx context.Context, e *env) error {
	changed, err := e.st.SetClass(ctx, c.number, c.class, operator(), time.Now())
	if errors.Is(err, host.ErrNotFound) {
		return usagef("--card = %q: not a card this host issued", c.number)
	}
	if err != nil {
		return err
	}
	shown := c.class
	if c.clear {
		shown = "none (its card type decides)"
	}
	if !changed {
		fmt.Fprintf(e.stdout, "card %s has class %s already\n", c.number, shown)
		return nil
	}
	fmt.Fprintf(e.stdout, "card %s: class %s; terminals learn it at their next pull\n", c.number, shown)
	return nil
}
