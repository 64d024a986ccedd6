package tap

import "errors"

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
