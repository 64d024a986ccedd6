package tap

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/redact"
)

// A card that stays on the reader after its tap (a kiosk's cardholder
// paying a top-up by phone) gets its new credit without being lifted and
// tapped again: LoadNow asks Run for a tap of the card present, a new card
// session on the same reader that reads the card, checks it is the same
// card, and runs the Loader as on any tap: write-ahead, recovery, exactly
// once. There is no second way for money to reach a card.

// Errors of LoadNow.
var (
	// ErrNoCard: no card is on the reader (it was lifted).
	ErrNoCard = errors.New("no card on the reader")
	// ErrOtherCard: the card on the reader is not the one asked for.
	ErrOtherCard = errors.New("another card is on the reader")
)

// loadNowState is what a Runner keeps for LoadNow.
type loadNowState struct {
	// cards are the card readers with a card on them now, by reader, with
	// the event that saw it arrive; only Run's goroutine touches it.
	cards map[string]reader.Event
	// requests carries LoadNow's requests to Run.
	requests chan loadNowRequest
	once     sync.Once
}

// loadNowRequest is one LoadNow, for Run's goroutine.
type loadNowRequest struct {
	reader, card string
	done         chan Result // buffered: Run never waits for the caller
	// loadOnly: a refund's tap (RefundNow), which charges no sale;
	// reader "" then means whichever card reader holds the card.
	loadOnly bool
}

// requests is the channel LoadNow hands its requests to Run on.
func (r *Runner) requests() chan loadNowRequest {
	r.now.once.Do(func() { r.now.requests = make(chan loadNowRequest) })
	return r.now.requests
}

// LoadNow taps again the card numbered card that lies on the named reader,
// on Run's goroutine between two taps, and returns the tap's result, which
// the hooks (OnBalance, OnLeave, OnTap) are told of as of any tap. The tap
// asks the host for the card's credits even when the pull's cache is
// fresh. When no card is on the reader the result's Err is ErrNoCard; when
// another card is, the card is read and shown and its Err is ErrOtherCard.
//
// It waits for Run until ctx ends (an error then, and the tap, if it
// started, still runs to its end). Never call it from a hook: Run would
// wait for itself.
func (r *Runner) LoadNow(ctx context.Context, readerName, card string) (Result, error) {
	req := loadNowRequest{reader: readerName, card: card, done: make(chan Result, 1)}
	select {
	case r.requests() <- req:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("waiting for the tap loop: %w", ctx.Err())
	}
	select {
	case res := <-req.done:
		return res, nil
	case <-ctx.Done():
		return Result{}, fmt.Errorf("waiting for the tap of the card present: %w", ctx.Err())
	}
}

// loadNow runs req on Run's goroutine.
func (r *Runner) loadNow(ctx context.Context, open openFunc, req loadNowRequest) {
	if req.loadOnly {
		r.refundNow(ctx, open, req)
		return
	}
	ev, ok := r.now.cards[req.reader]
	if !ok || r.Roles.Of(req.reader) != reader.RoleCard {
		req.done <- Result{Reader: req.reader, Err: ErrNoCard}
		return
	}
	r.logger().Info("loading the card present", "reader", req.reader, "card", redact.CardNumber(req.card))
	ev.Time = time.Now()
	req.done <- r.tapCard(context.WithValue(ctx, askHostKey{}, true), open, ev, req.card)
}

// present keeps r.now.cards up to date with ev.
func (r *Runner) present(ev reader.Event) {
	switch ev.Kind {
	case reader.CardInserted:
		if r.now.cards == nil {
			r.now.cards = map[string]reader.Event{}
		}
		r.now.cards[ev.Reader] = ev
	case reader.CardRemoved, reader.ReaderRemoved:
		delete(r.now.cards, ev.Reader)
	case reader.ServiceLost:
		clear(r.now.cards)
	}
}

// sameCard reports whether the tap read the card numbered want; when it
// did not, res.Err says why (the read's own error, or ErrOtherCard).
func sameCard(res *Result, want string) bool {
	switch {
	case res.Read == nil:
		if res.Err == nil {
			res.Err = ErrOtherCard
		}
		return false
	case res.Read.Info.CardNumber != want:
		res.Err = fmt.Errorf("%w (%s, not %s)", ErrOtherCard, redact.CardNumber(res.Read.Info.CardNumber), redact.CardNumber(want))
		return false
	}
	return true
}

// askHostKey marks the context of a LoadNow tap: its load asks the host
// for the card's credits rather than trust the pull's cache (cacheFresh).
type askHostKey struct{}

// asksHost reports whether ctx is a LoadNow tap's.
func asksHost(ctx context.Context) bool {
	v, _ := ctx.Value(askHostKey{}).(bool)
	return v
}
