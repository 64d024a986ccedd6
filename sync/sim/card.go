package sim

import (
	"context"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
)

// Card is a simulated e-purse card the fleet loads: package epursesim's
// card side, kept in memory, answering the same APDUs a real card does. A
// card is in one reader's field at a time, so a terminal takes it for the
// whole of a tap (unless Config.SharedCards says otherwise).
type Card struct {
	sim     *epursesim.SimCard
	number  string
	initial int64
	field   chan struct{} // holds one token while a terminal has the card
}

// NewCard makes a card of f (a card file as cardhost issues it), which it
// owns from then on.
func NewCard(f *epursesim.CardFile) *Card {
	return &Card{sim: epursesim.NewSimCard(f, ""), number: f.Info.CardNumber, initial: f.EPBalance, field: make(chan struct{}, 1)}
}

// Number is the card number, as the host knows the card.
func (c *Card) Number() string { return c.number }

// Initial is the EP balance the card had when the fleet got it, in fen.
func (c *Card) Initial() int64 { return c.initial }

// Balance is the card's EP balance now, in fen: Initial plus every load
// the card applied.
func (c *Card) Balance() int64 { return c.sim.File().EPBalance }

// Counter is the card's EP online counter now: one per applied load.
func (c *Card) Counter() uint16 { return c.sim.File().EPOnlineCounter }

// File returns a copy of the card's state, to save (CardFile.Save) for a
// later look at what the fleet did to it.
func (c *Card) File() *epursesim.CardFile { return c.sim.File() }

// take puts the card into a terminal's field, waiting at most until ctx
// ends; release takes it out.
func (c *Card) take(ctx context.Context) bool {
	select {
	case c.field <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *Card) release() { <-c.field }

// initLoad powers the card up, selects its application and runs
// INITIALIZE FOR LOAD, as a terminal does on a tap.
func (c *Card) initLoad(amount int64, term [6]byte) (epurse.LoadInit, error) {
	c.sim.Reset()
	if _, err := epurse.Select(c.sim); err != nil {
		return epurse.LoadInit{}, err
	}
	return epurse.InitLoad(c.sim, epurse.PurseEP, 1, amount, term)
}

// creditLoad sends CREDIT FOR LOAD with the host's MAC2 and returns the
// card's TAC.
func (c *Card) creditLoad(when time.Time, mac2 [4]byte) ([4]byte, error) {
	return epurse.CreditLoad(c.sim, when, mac2)
}
