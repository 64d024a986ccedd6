package sim

import (
	"context"
	"errors"
	"fmt"

	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
)

// CardBalance is one card's side of the books: its balance when the fleet
// got it and now, in fen.
type CardBalance struct {
	Number           string
	Initial, Balance int64
}

// Books is the card's side of the books now.
func (c *Card) Books() CardBalance {
	return CardBalance{Number: c.Number(), Initial: c.Initial(), Balance: c.Balance()}
}

// CreditLister lists a card's credits with their fate: host.Store's
// Credits.
type CreditLister interface {
	Credits(ctx context.Context, number string) ([]host.CreditInfo, error)
}

// ErrBooks is wrapped when the cards and the host disagree.
var ErrBooks = errors.New("cards and host disagree")

// CheckBooks compares the cards with the host: each card's balance must
// have risen by exactly the credits the host holds consumed for it, and
// every credit must be pending or consumed. It returns how many credits
// the host holds consumed and their sum, and an error naming every card or
// credit that does not fit (wrapping ErrBooks).
func CheckBooks(ctx context.Context, st CreditLister, cards []CardBalance) (consumed int, consumedFen int64, err error) {
	var bad []error
	for _, c := range cards {
		list, err := st.Credits(ctx, c.Number)
		if err != nil {
			return consumed, consumedFen, err
		}
		var sum int64
		for _, cr := range list {
			switch cr.State {
			case hostapi.CreditConsumed:
				sum += cr.AmountFen
				consumed++
			case hostapi.CreditPending:
			default:
				bad = append(bad, fmt.Errorf("%w: credit %s of card %s is %s", ErrBooks, cr.ID, c.Number, cr.State))
			}
		}
		consumedFen += sum
		if c.Balance-c.Initial != sum {
			bad = append(bad, fmt.Errorf("%w: card %s rose by %d fen, the host holds %d fen of its credits consumed", ErrBooks, c.Number, c.Balance-c.Initial, sum))
		}
	}
	return consumed, consumedFen, errors.Join(bad...)
}
