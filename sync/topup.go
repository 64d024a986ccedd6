package sync

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cardd/cardd/hostapi"
)

// The kiosk top-up's calls (hostapi/topup.go). They are in their own file so
// that the pull's and the load's calls in client.go stay as they are.

// Errors the top-up calls wrap around the host's *HostError, so that a
// caller can say what happened in plain words without knowing the codes.
var (
	// ErrTopupClosed: the order was closed before it was paid (the
	// cardholder cancelled, or it timed out). Nothing was charged.
	ErrTopupClosed = errors.New("the top-up order is closed")
	// ErrTopupUnavailable: the host's payment provider did not answer.
	ErrTopupUnavailable = errors.New("the payment provider is unavailable")
	// ErrTopupCardDenied: the card is on the deny list; no order for it.
	ErrTopupCardDenied = errors.New("the card is on the deny list")
	// ErrTopupBalanceCap: the amount would take the card over its cap.
	ErrTopupBalanceCap = errors.New("the top-up would take the card over its balance cap")
)

// TopupTimeout bounds a top-up call whose context has no deadline: the
// cardholder stands at the kiosk waiting for the answer.
const TopupTimeout = 10 * time.Second

// TopupOrder asks the host for a payment order. The same req.Key again
// returns the same order, so a call whose answer was lost may be sent
// again.
func (c *Client) TopupOrder(ctx context.Context, req hostapi.TopupOrderRequest) (hostapi.TopupOrder, error) {
	return c.topup(ctx, hostapi.PathTopupOrder, req)
}

// TopupQuery asks for the state of an order this terminal created; the
// host asks its provider when the order is still unpaid.
func (c *Client) TopupQuery(ctx context.Context, id string) (hostapi.TopupOrder, error) {
	return c.topup(ctx, hostapi.PathTopupQuery, hostapi.TopupQueryRequest{ID: id})
}

// TopupClose closes an unpaid order. An order paid meanwhile comes back
// paid, not as an error: the money is the card's.
func (c *Client) TopupClose(ctx context.Context, id string) (hostapi.TopupOrder, error) {
	return c.topup(ctx, hostapi.PathTopupClose, hostapi.TopupCloseRequest{ID: id})
}

func (c *Client) topup(ctx context.Context, path string, req any) (hostapi.TopupOrder, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, TopupTimeout)
		defer cancel()
	}
	var o hostapi.TopupOrder
	if err := c.call(ctx, path, req, &o); err != nil {
		return o, topupError(err)
	}
	return o, nil
}

// topupError wraps the sentinel of the host's code around err, keeping err
// (and so HasCode) reachable.
func topupError(err error) error {
	var he *HostError
	if !errors.As(err, &he) {
		return err
	}
	var sentinel error
	switch he.Code {
	case hostapi.CodeTopupClosed:
		sentinel = ErrTopupClosed
	case hostapi.CodeTopupUnavailable:
		sentinel = ErrTopupUnavailable
	case hostapi.CodeCardDenied:
		sentinel = ErrTopupCardDenied
	case hostapi.CodeBalanceCap:
		sentinel = ErrTopupBalanceCap
	default:
		return err
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}
