package daemon

import (
	"context"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer/spool"
	"github.com/cardd/cardd/tap"
)

// shifts are the POS's cashier shifts (班) for the local API: the
// journal's, closed with the summary's receipt when printer.enabled and
// with the voids the void table counts.
type shifts struct {
	*offline.Store
	opt offline.CloseOptions
	// upload, when set, wakes the host link's upload loop: a closed shift
	// goes up at once rather than at the next round.
	upload func()
}

// CloseShift closes the open shift with its receipt and voids.
func (s shifts) CloseShift(ctx context.Context) (offline.ShiftSummary, error) {
	sum, err := s.Store.CloseShift(ctx, s.opt)
	if err == nil && s.upload != nil {
		s.upload()
	}
	return sum, err
}

// newShifts wires the shifts of a POS. voids counts the voids of a shift
// (nil: none counted, printed as 0).
func newShifts(cfg *config.Config, store *offline.Store, voids offline.VoidTotals) shifts {
	s := shifts{Store: store, opt: offline.CloseOptions{Voids: voids}}
	if cfg.Printer.Enabled {
		s.opt.Receipt = shiftReceipt(cfg)
	}
	return s
}

// shiftReceipt is the close-out slip of a shift's summary.
func shiftReceipt(cfg *config.Config) func(offline.ShiftSummary) (offline.NewReceipt, error) {
	return func(sum offline.ShiftSummary) (offline.NewReceipt, error) {
		f := spool.Facts{Kind: spool.KindShift, Time: sum.Closed, TerminalID: cfg.Terminal.ID, Shift: &sum}
		return f.NewReceipt()
	}
}

// shiftOpen is the till's check of pos.require_shift: tap.ErrNoShift while
// no cashier's shift is open.
func shiftOpen(ctx context.Context, store *offline.Store) func() error {
	return func() error {
		_, ok, err := store.CurrentShift(ctx)
		switch {
		case err != nil:
			return err
		case !ok:
			return tap.ErrNoShift
		}
		return nil
	}
}
