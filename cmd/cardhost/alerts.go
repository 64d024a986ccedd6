package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
)

// alertsSet shows or changes the balance-alert webhook and the default
// threshold.
type alertsSet struct {
	operatorFlag
	url, secretFile, below, cardNumber string
	off, disable                       bool
	secret                             string // read from secretFile
	fen                                int64  // below, checked
}

func (c *alertsSet) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.url, "url", "", "the webhook's http:// or https:// URL the host POSTs alerts to")
	fs.StringVar(&c.secretFile, "secret-file", "", "file holding the secret (16 bytes or more) that signs the webhooks (HMAC-SHA256)")
	fs.StringVar(&c.below, "below", "", "alert when a purchase takes a card below this balance, like 10.00 (the default of every card)")
	fs.BoolVar(&c.off, "off", false, "no default threshold: only cards with their own ('cardhost card alert') alert")
	fs.BoolVar(&c.disable, "disable", false, "no webhook: no alert is queued from now on (those queued wait for a URL again)")
	fs.StringVar(&c.cardNumber, "card-number", "", "the card number in the webhook: masked (first 4, last 4; the default) or full")
	c.operatorFlag.flags(fs)
}

func (c *alertsSet) check() error {
	if c.below != "" && c.off {
		return usagef("--below and --off: give one")
	}
	if c.url != "" && c.disable {
		return usagef("--url and --disable: give one")
	}
	if c.url != "" {
		if err := host.CheckAlertURL(c.url); err != nil {
			return usagef("--%v", err)
		}
	}
	if c.below != "" {
		var err error
		if c.fen, err = amountFlag("below", c.below, "10.00"); err != nil {
			return err
		}
	}
	if c.cardNumber != "" && c.cardNumber != host.AlertNumberMasked && c.cardNumber != host.AlertNumberFull {
		return usagef("--card-number = %q: want masked or full", c.cardNumber)
	}
	if c.secretFile != "" {
		b, err := os.ReadFile(c.secretFile)
		if err != nil {
			return usagef("--secret-file = %q: %v", c.secretFile, err)
		}
		c.secret = strings.TrimRight(string(b), "\r\n")
		if len(c.secret) < 16 {
			return usagef("--secret-file = %q: the secret is %d bytes; want at least 16", c.secretFile, len(c.secret))
		}
	}
	return c.operatorFlag.check()
}

func (c *alertsSet) run(ctx context.Context, e *env) error {
	cfg, err := e.st.AlertConfig(ctx)
	if err != nil {
		return err
	}
	if c.url != "" || c.disable || c.secret != "" || c.below != "" || c.off || c.cardNumber != "" {
		if c.url != "" || c.disable {
			cfg.URL = c.url
		}
		if c.secret != "" {
			cfg.Secret = c.secret
		}
		if c.below != "" || c.off {
			cfg.BelowFen = c.fen
		}
		if c.cardNumber != "" {
			cfg.CardNumber = c.cardNumber
		}
		if err := e.st.SetAlertConfig(ctx, cfg, c.actor(), time.Now()); err != nil {
			if ce, ok := errors.AsType[*host.AlertConfigError](err); ok {
				if ce.Field == "secret" {
					ce.Field = "secret-file"
				}
				return usagef("--%v", ce)
			}
			return err
		}
		if cfg, err = e.st.AlertConfig(ctx); err != nil {
			return err
		}
	}
	if cfg.URL == "" {
		fmt.Fprintf(e.stdout, "balance alerts are off: no webhook URL (set --url and --secret-file)%s\n", setBy(host.ApprovalSetting{Actor: cfg.Actor, Updated: cfg.Updated}))
		return nil
	}
	below := "off for cards without their own threshold"
	if cfg.BelowFen > 0 {
		below = "below " + money.Format(cfg.BelowFen)
	}
	fmt.Fprintf(e.stdout, "balance alerts to %s, signed; default threshold %s; card number %s%s\n", cfg.URL, below, cfg.CardNumber,
		setBy(host.ApprovalSetting{Actor: cfg.Actor, Updated: cfg.Updated}))
	return nil
}

// alertsList prints the balance alerts and their delivery.
type alertsList struct {
	state  string
	asJSON bool
}

func (c *alertsList) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.state, "state", "", "only alerts in this state: queued, sent or failed")
	fs.BoolVar(&c.asJSON, "json", false, "print JSON instead of a table")
}

func (c *alertsList) check() error {
	switch c.state {
	case "", host.AlertQueued, host.AlertSent, host.AlertFailed:
		return nil
	}
	return usagef("--state = %q: want queued, sent or failed", c.state)
}

func (c *alertsList) run(ctx context.Context, e *env) error {
	list, err := e.st.Alerts(ctx, c.state)
	if err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(e.stdout, list)
	}
	tw, flush := newTable(e.stdout)
	fmt.Fprintln(tw, "ID\tCREATED\tCARD\tSTATE\tATTEMPTS\tNEXT\tLAST ERROR")
	for _, a := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", a.ID, a.Created, a.Card, a.State, a.Attempts, dash(a.NextAt), dash(a.LastError))
	}
	return flush()
}

// cardAlert gives a card its own balance-alert threshold.
type cardAlert struct {
	operatorFlag
	card, below  string
	off, useDflt bool
	fen          int64
}

func (c *cardAlert) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.card, "card", "", "the card's number (required)")
	fs.StringVar(&c.below, "below", "", "alert when a purchase takes this card below this balance, like 10.00")
	fs.BoolVar(&c.off, "off", false, "no alerts for this card, whatever the default")
	fs.BoolVar(&c.useDflt, "default", false, "the default threshold again ('cardhost alerts set --below')")
	c.operatorFlag.flags(fs)
}

func (c *cardAlert) check() error {
	if err := required("card", c.card); err != nil {
		return err
	}
	n := 0
	for _, set := range []bool{c.below != "", c.off, c.useDflt} {
		if set {
			n++
		}
	}
	if n != 1 {
		return usagef("give one of --below, --off and --default")
	}
	if c.below != "" {
		var err error
		if c.fen, err = amountFlag("below", c.below, "10.00"); err != nil {
			return err
		}
	}
	return c.operatorFlag.check()
}

func (c *cardAlert) run(ctx context.Context, e *env) error {
	if err := e.st.SetCardAlert(ctx, c.card, c.fen, c.useDflt, c.actor(), time.Now()); err != nil {
		if errors.Is(err, host.ErrNotFound) {
			return usagef("--card = %q: %v", redact.CardNumber(c.card), err)
		}
		return err
	}
	switch {
	case c.useDflt:
		fmt.Fprintf(e.stdout, "card %s: the default balance-alert threshold\n", redact.CardNumber(c.card))
	case c.off:
		fmt.Fprintf(e.stdout, "card %s: no balance alerts\n", redact.CardNumber(c.card))
	default:
		fmt.Fprintf(e.stdout, "card %s: a balance alert when a purchase takes it below %s\n", redact.CardNumber(c.card), money.Format(c.fen))
	}
	return nil
}
