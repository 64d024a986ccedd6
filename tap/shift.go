package tap

import (
	"errors"
	"fmt"

	"github.com/cardd/cardd/offline"
)

// ErrNoShift refuses a sale at a terminal that sells only within a
// cashier's shift (pos.require_shift) while none is open: the sale is
// refused before the card is touched, and is not armed.
var ErrNoShift = errors.New("no cashier's shift is open: open one (cardd pos shift open --cashier ID) before selling")

// OutcomeNoShift is a sale refused for ErrNoShift.
const OutcomeNoShift Outcome = "no_shift"

// shiftOpen is nil when the till may sell now as far as shifts go: it
// requires none (Shift nil), or one is open.
func (t *Till) shiftOpen() error {
	if t == nil || t.Shift == nil {
		return nil
	}
	return t.Shift()
}

// rowInShift is nil unless the till requires a shift and row, just written
// ahead, fell in none: the shift closed between shiftOpen and the write-
// ahead (offline.Store.Begin takes the shift open then). Such a sale would
// be in no close-out, so it is refused before the card changes; the caller
// finishes the row failed.
func (t *Till) rowInShift(row offline.Row) error {
	if t == nil || t.Shift == nil || row.Sale.Shift != 0 {
		return nil
	}
	return fmt.Errorf("%w (the shift closed during the tap; journal row %s not sent to the card)", ErrNoShift, row.ID)
}
