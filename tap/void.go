package tap

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/redact"
)

// A void's refund (a credit the host made for a sale the cashier voided)
// reaches a card still on the POS's reader at once: RefundNow taps it
// again as LoadNow does, through the one load path (write-ahead, recovery,
// exactly once), but the tap loads only: a sale armed meanwhile is not
// charged to the card whose sale was just taken back; it waits for the
// next tap.

// RefundNow taps again the card numbered card on whichever card reader
// holds it, loading its credits asked of the host and charging nothing,
// and returns the tap's result (ErrNoCard when no reader holds it, the
// card having left: its refund then loads at its next tap anywhere). It
// waits for Run as LoadNow does; never call it from a hook.
func (r *Runner) RefundNow(ctx context.Context, card string) (Result, error) {
	req := loadNowRequest{card: card, done: make(chan Result, 1), loadOnly: true}
	select {
	case r.requests() <- req:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("waiting for the tap loop: %w", ctx.Err())
	}
	select {
	case res := <-req.done:
		return res, nil
	case <-ctx.Done():
		return Result{}, fmt.Errorf("waiting for the refund's tap of the card present: %w", ctx.Err())
	}
}

// refundNow runs a RefundNow on Run's goroutine: the card readers holding
// a card, in name order, until one holds the card asked for.
func (r *Runner) refundNow(ctx context.Context, open openFunc, req loadNowRequest) {
	var names []string
	for name := range r.now.cards {
		if r.Roles.Of(name) == reader.RoleCard {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	res := Result{Err: ErrNoCard}
	ctx = context.WithValue(context.WithValue(ctx, askHostKey{}, true), loadOnlyKey{}, true)
	for _, name := range names {
		ev := r.now.cards[name]
		r.logger().Info("loading a refund onto the card present", "reader", name, "card", redact.CardNumber(req.card))
		ev.Time = time.Now()
		res = r.tapCard(ctx, open, ev, req.card)
		if res.Read != nil && res.Read.Info.CardNumber == req.card {
			break
		}
	}
	req.done <- res
}

// loadOnlyKey marks the context of a RefundNow tap: it charges no sale.
type loadOnlyKey struct{}

// loadsOnly reports whether ctx is a RefundNow tap's.
func loadsOnly(ctx context.Context) bool {
	v, _ := ctx.Value(loadOnlyKey{}).(bool)
	return v
}
