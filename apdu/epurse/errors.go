package epurse

import (
	"errors"
	"fmt"

	"github.com/cardd/cardd/apdu"
)

// ErrBadRecord is wrapped by every parse error of card data that has the
// right length but impossible content (bad BCD, an impossible date, a name
// that is not GBK). A wrong length wraps apdu.ErrMalformed instead.
var ErrBadRecord = errors.New("epurse: bad record")

// ErrBadAmount is returned, wrapped, for an amount or balance that does not
// fit the card's 4-byte unsigned field (negative or above MaxAmount).
var ErrBadAmount = errors.New("epurse: amount out of range")

// ErrBadArgument is returned, wrapped, for a caller's argument the card
// protocol cannot carry (a purse other than ED or EP, a PIN that is not
// 4 to 12 digits, an SFI outside 1..30). Nothing is sent to the card.
var ErrBadArgument = errors.New("epurse: bad argument")

// MaxAmount is the largest amount or balance, in fen, that the 4-byte fields
// of the card can hold.
const MaxAmount = 0xFFFFFFFF

func checkAmount(what string, v int64) error {
	if v < 0 || v > MaxAmount {
		return fmt.Errorf("%w: %s %d fen is not in 0..%d", ErrBadAmount, what, v, int64(MaxAmount))
	}
	return nil
}

// wrongLength reports a response of the wrong size: a card answering 9000
// with too few bytes must never turn into a silent zero balance.
func wrongLength(cmd string, got, want int) error {
	return fmt.Errorf("%w: %s answered %d data bytes, want %d", apdu.ErrMalformed, cmd, got, want)
}
