package mifare

import (
	"errors"
	"fmt"

	"github.com/cardd/cardd/apdu"
)

// Errors of this package. Status words other than the ones named here come
// back as the apdu package's *apdu.StatusError, wrapped with context.
var (
	// ErrNotValueBlock is returned, wrapped, for 16 bytes that are not a
	// well-formed value block for the expected address (a torn write, a data
	// block, another block's value).
	ErrNotValueBlock = errors.New("mifare: not a value block")

	// ErrBadAccessBits is returned, wrapped, for access bytes whose inverted
	// copies do not match. A card that received them would lock the sector
	// for ever, so they are never written.
	ErrBadAccessBits = errors.New("mifare: malformed access bits")

	// ErrAuth is a failed authentication (6300 to FF 86): the key in the slot
	// is not the sector's, or the slot is empty. The card drops any earlier
	// authentication with it.
	ErrAuth = errors.New("mifare: authentication failed")

	// ErrOperationFailed is 6300 to any other storage-card command: the
	// sector is not authenticated, the key used may not do this, or the
	// block is not a value block for a value operation.
	ErrOperationFailed = errors.New("mifare: operation failed")

	// ErrBadArgument is returned, wrapped, for a caller's argument the card
	// cannot carry (a block beyond the card, a P1 no reader knows, a wallet
	// whose blocks are not in its sector). Nothing is sent to the card.
	ErrBadArgument = errors.New("mifare: bad argument")

	// ErrBadAmount is returned, wrapped, for an amount that is not positive or
	// a balance that would leave 0..MaxBalance. Nothing is written.
	ErrBadAmount = errors.New("mifare: amount out of range")

	// ErrInsufficientBalance is a decrement larger than the balance. Nothing
	// is written. It wraps apdu.ErrInsufficientBalance, so a caller that
	// handles the CPU-card purse's 9401 handles this the same way.
	ErrInsufficientBalance = fmt.Errorf("mifare: %w", apdu.ErrInsufficientBalance)

	// ErrNotWallet is returned, wrapped, when the sector's access bits are
	// not a wallet's (value and backup blocks 110, trailer 011, as 08 77 8F
	// gives): in the transport configuration, for one, key A may write any
	// balance. The wallet is then neither read nor written.
	ErrNotWallet = errors.New("mifare: sector is not set up as a wallet")

	// ErrCorrupt is returned, wrapped, when neither the value block nor its
	// backup holds a valid balance. Nothing is repaired: the card needs
	// its issuer.
	ErrCorrupt = errors.New("mifare: wallet holds no valid balance")

	// ErrOutcomeUnknown is returned, wrapped, when the write of the new
	// balance was sent but not answered with 9000: the card holds either the
	// old balance or the new one. Resolve it from the card on its next tap
	// with Change.Happened (DESIGN.md, money rule 3), never by guessing.
	ErrOutcomeUnknown = errors.New("mifare: outcome unknown, read the card again")

	// ErrBalanceMoved is returned by Change.Happened when the balance read is
	// neither the old nor the new one of the change: something else changed
	// the card since.
	ErrBalanceMoved = errors.New("mifare: balance is neither before nor after the change")
)

// wrongLength reports a response of the wrong size: a reader answering 9000
// with too few bytes must never turn into a silent zero balance.
func wrongLength(cmd string, got int, want string) error {
	return fmt.Errorf("%w: %s answered %d data bytes, want %s", apdu.ErrMalformed, cmd, got, want)
}
