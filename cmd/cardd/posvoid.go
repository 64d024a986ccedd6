package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/daemon"
	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
)

// voidSlack is how much longer than the daemon's own bound on a void
// (daemon.VoidWait) `cardd pos void` waits: the call's own trip, so that it
// never gives up on a void the daemon then completes and a cashier pays
// the money back twice. voidTimeout, when set (tests), replaces the sum.
const voidSlack = 10 * time.Second

var voidTimeout time.Duration

// voidRequest is the request of `cardd pos void [SALE] [--amount A]
// [--cashier ID]`; an amount that is not one is a usage error (exit 2)
// before anything is voided.
func voidRequest(args []string, amount, cashier string) (localapi.VoidRequest, error) {
	var req localapi.VoidRequest
	switch len(args) {
	case 0:
	case 1:
		req.Sale = args[0]
	default:
		return req, usageErr("%s", posUsage)
	}
	if amount != "" {
		fen, err := money.Parse(amount)
		if err != nil || fen <= 0 {
			return req, usageErr("--amount %q: want yuan above 0 with at most two decimals, like 12.50", amount)
		}
		req.Amount = money.Format(fen)
	}
	req.Cashier = cashier
	return req, nil
}

// cmdPOSVoid is `cardd pos void`: its arguments checked before the
// daemon is looked for, so a mistyped amount is a usage error (exit 2)
// whether or not cardd runs.
func cmdPOSVoid(ctx context.Context, cfg *config.Config, args []string, o posOptions, stdout io.Writer) error {
	req, err := voidRequest(args, o.voidAmount, o.cashier)
	if err != nil {
		return err
	}
	rt, err := findAPI(cfg)
	if err != nil {
		return err
	}
	return posVoid(ctx, rt, req, voidWaitFor(cfg), stdout)
}

// voidWaitFor is how long `cardd pos void` waits for a daemon of cfg.
func voidWaitFor(cfg *config.Config) time.Duration {
	if voidTimeout > 0 {
		return voidTimeout
	}
	return daemon.VoidWait(cfg) + voidSlack
}

// posVoid voids a sale at the daemon and says what became of its refund.
// A void the daemon refuses (voided already, outside the window, not a
// sale, above the sale, no such sale) exits 2 with the reason; one the
// host refused exits 1.
func posVoid(ctx context.Context, rt daemon.RuntimeAPI, req localapi.VoidRequest, wait time.Duration, stdout io.Writer) error {
	var out localapi.VoidOutcome
	err := apiCallWithin(ctx, wait, rt, http.MethodPost, "/v1/purchase/void", req, &out)
	var refused *apiError
	if errors.As(err, &refused) && refused.status >= 400 && refused.status < 500 {
		return &exitError{code: 2, err: err}
	}
	if err != nil {
		return err
	}
	what := fmt.Sprintf("void %s of sale %s (%s, card %s)", out.Void, out.Sale, out.Amount, out.Card)
	switch {
	case out.State == offline.VoidRefused:
		fmt.Fprintf(stdout, "%s journaled, but the host refused its refund: %s\n", what, out.HostReason)
		return &exitError{code: 1, err: fmt.Errorf("void %s refused by the host", out.Void)}
	case out.Loaded && out.BalanceFen != nil:
		fmt.Fprintf(stdout, "%s refunded onto the card: balance %s\n", what, money.Format(*out.BalanceFen))
	case out.State == offline.VoidRefunded:
		fmt.Fprintf(stdout, "%s refunded (credit %s): it loads at the card's next tap, at any terminal\n", what, out.Credit)
	default:
		fmt.Fprintf(stdout, "%s journaled; the host has not answered: the refund follows when it does, then at the card's next tap\n", what)
	}
	return nil
}
