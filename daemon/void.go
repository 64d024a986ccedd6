package daemon

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer/spool"
	"github.com/cardd/cardd/redact"
	hostsync "github.com/cardd/cardd/sync"
	"github.com/cardd/cardd/tap"
)

// A void at the POS (冲正, `cardd pos void`, POST /v1/purchase/void), in
// this order:
//
//  1. The void is journaled (offline.Store.RecordVoid) before anything
//     else, with its receipt: refused, changing nothing, for a sale voided
//     already, outside pos.void_window, not a sale the card answered, or
//     an amount above the sale.
//  2. With a host link, it is sent at once (bounded by hostVoidTimeout),
//     with its sale's row: the host makes the refund credit. Offline, or
//     when the host does not answer, it stays owed and the sync loop sends
//     it when the link is back.
//  3. With the refund made and the card still on a card reader, the runner
//     taps the card again (tap.Runner.RefundNow) and the refund is loaded
//     by the one load path. Otherwise it loads at the card's next tap, at
//     any terminal, as any credit does.
type voider struct {
	store     *offline.Store
	client    *hostsync.Client // nil: no host link
	refundNow func(ctx context.Context, card string) (tap.Result, error)
	window    time.Duration
	receipt   func(v offline.Void, sale offline.Row) (offline.NewReceipt, error) // nil: no printer
	kick      func()                                                             // wakes the print worker
	// tapWait bounds the refund's tap: one going on, then this one.
	tapWait time.Duration
	log     *slog.Logger
}

// hostVoidTimeout bounds the void's own request to the host: the cashier
// waits for it. A void not answered in time is sent again by the sync loop.
const hostVoidTimeout = 10 * time.Second

// Void runs a void as the comment on voider says.
func (v *voider) Void(ctx context.Context, req localapi.VoidRequest) (localapi.VoidOutcome, error) {
	vd, err := v.store.RecordVoid(ctx, offline.VoidRequest{SaleID: req.Sale, AmountFen: req.AmountFen, Window: v.window,
		Cashier: req.Cashier, Receipt: v.receipt})
	if err != nil {
		v.log.Info("void refused", "sale", req.Sale, "err", err)
		return localapi.VoidOutcome{}, err
	}
	v.log.Info("sale voided", "void", vd.ID, "sale", vd.SaleID, "card", redact.CardNumber(vd.Card),
		"amount", money.Format(vd.AmountFen), "cashier", vd.Cashier)
	if v.receipt != nil && v.kick != nil {
		v.kick()
	}
	out := localapi.VoidOutcome{Void: vd.ID, Sale: vd.SaleID, Card: redact.CardNumber(vd.Card), AmountFen: vd.AmountFen,
		Amount: money.Format(vd.AmountFen), State: vd.State}
	if v.client == nil {
		return out, nil
	}
	hctx, cancel := context.WithTimeout(ctx, hostVoidTimeout)
	sent, err := hostsync.SendVoid(hctx, v.client, v.store, vd, v.log)
	cancel()
	if err != nil {
		v.log.Warn("void not answered by the host; the sync loop sends it again", "void", vd.ID, "err", err)
		return out, nil
	}
	out.State, out.Credit, out.HostReason = sent.State, sent.CreditID, sent.HostReason
	if sent.State != offline.VoidRefunded {
		return out, nil
	}
	tctx, cancel := context.WithTimeout(ctx, v.tapWait)
	defer cancel()
	res, err := v.refundNow(tctx, vd.Card)
	switch {
	case err != nil:
		v.log.Warn("refund's tap of the card present", "void", vd.ID, "err", err)
	case errors.Is(res.Err, tap.ErrNoCard):
		v.log.Info("refund waits for the card's next tap", "void", vd.ID, "card", redact.CardNumber(vd.Card), "credit", sent.CreditID)
	default:
		out.Loaded = refundLoaded(res, sent.CreditID)
		if out.Loaded {
			b := res.Load.Balance
			out.BalanceFen = &b
		} else if res.Err != nil {
			v.log.Warn("refund not loaded on the card present; it loads at the card's next tap", "void", vd.ID, "err", res.Err)
		}
	}
	return out, nil
}

// refundLoaded reports whether the tap res wrote credit onto the card.
func refundLoaded(res tap.Result, credit string) bool {
	return res.Load != nil && slices.ContainsFunc(res.Load.Loads, func(l tap.LoadResult) bool { return l.CreditID == credit && l.Applied })
}

// voidReceipt makes the slip of a void: the sale voided, the refund, the
// void's id as the reference.
func voidReceipt(cfg *config.Config) func(v offline.Void, sale offline.Row) (offline.NewReceipt, error) {
	return func(v offline.Void, sale offline.Row) (offline.NewReceipt, error) {
		f := spool.Facts{Kind: spool.KindVoid, Time: v.Created, TerminalID: cfg.Terminal.ID, Card: v.Card,
			AmountFen: v.AmountFen, Reference: v.ID, Voided: sale.ID}
		return f.NewReceipt()
	}
}

// assembleVoids gives the POS's API its voids, after the runner and the
// host link exist.
func (d *Daemon) assembleVoids(link *hostLink) {
	v := &voider{store: d.store, refundNow: d.runner.RefundNow, window: d.cfg.POS.VoidWindow, log: d.log,
		tapWait: voidTapWait(d.cfg),
		kick: func() {
			if k := d.api.KickPrinter; k != nil {
				k()
			}
		}}
	if link != nil {
		v.client = link.client
	} else {
		d.log.Warn("no host.url: voids are journaled, but their refunds wait until a host is configured")
	}
	if d.cfg.Printer.Enabled {
		v.receipt = voidReceipt(d.cfg)
	}
	d.api.Voids = v
	d.api.VoidTimeout = VoidWait(d.cfg)
}

// VoidWait is the longest a void request may take at a POS daemon of cfg:
// the host's answer, then a tap of the card present (another tap may be
// going on first). `cardd pos void` waits a little longer, so it never
// gives up on a void the daemon is still completing.
func VoidWait(cfg *config.Config) time.Duration {
	return hostVoidTimeout + voidTapWait(cfg) + 5*time.Second
}

func voidTapWait(cfg *config.Config) time.Duration { return 2*cfg.Tap.Timeout + 5*time.Second }
