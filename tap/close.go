package tap

import (
	"context"
	"errors"
	"fmt"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/redact"
)

// Errors of closing a card (销户).
var (
	// ErrCardClosed refuses a card this terminal has closed already: its
	// balance was debited and is owed back by the host, which denies it
	// (a card denied, for the tap's outcome).
	ErrCardClosed = fmt.Errorf("%w: the card was closed (销户)", ErrCardDenied)
	// ErrCloseInDoubt: the card's closing debit did not answer and its
	// next tap could not tell from the card whether it happened; the host
	// settles it from the journal. Nothing is debited again meanwhile.
	ErrCloseInDoubt = errors.New("the card's closing debit is in doubt")
)

// CloseReport is what a tap did of a close the host asked for.
type CloseReport struct {
	// ID is the close's id (hostapi.CloseID), which the closing row
	// carries in its CreditID.
	ID string
	// RefundFen is the balance the closing debit took: what the host owes
	// the holder back. 0 for a card that held nothing (no debit, a
	// closing read).
	RefundFen int64
	JournalID string
	// Closed is true when the card was closed on this tap: debited, found
	// debited by this tap's recovery, or read empty.
	Closed bool
}

// closeCard runs, when this terminal closes cards, before any sale: a
// card the host asked to close has its whole purse balance debited
// through the PSAM, as a purchase whose row names the close (write-ahead,
// and settled from the card on its next tap like every purchase, so it is
// debited once); a card that holds nothing is recorded closed by a read
// row, with no debit. closing is true when the tap is about the close,
// and the sale armed, if any, is not taken.
func (p *Purchaser) closeCard(ctx context.Context, t apdu.Transmitter, cr *CardRead, openSAM func() (SAMSession, error),
	rep *PurchaseReport, after *afterCard) (closing bool, err error) {
	if !p.CloseCards {
		return false, nil
	}
	card := cr.Info.CardNumber
	id, err := p.Store.CloseOf(ctx, card)
	if err != nil || id == "" {
		return false, err
	}
	rep.Close = &CloseReport{ID: id}
	if row, found, err := p.Store.ClosingRow(ctx, id); err != nil {
		return true, err
	} else if found {
		return true, p.closedBefore(row, rep)
	}
	if cr.balanceDeferred {
		// The read left the balance to a sale's INITIALIZE: the close
		// needs it first, to know what to debit.
		if err := cr.readDeferred(t); err != nil {
			return true, err
		}
		rep.Balance = cr.Balance
	}
	amount := cr.purseOf(rep.Balance)
	if amount <= 0 {
		return true, p.closeEmpty(ctx, cr, rep)
	}
	if err := after.flush(); err != nil {
		p.logger().Warn("the last commit of a load", "err", err)
	}
	if openSAM == nil {
		return true, ErrNoSAM
	}
	sam, err := openSAM()
	if err != nil {
		return true, fmt.Errorf("%w: %v", ErrNoSAM, err)
	}
	rep.Close.RefundFen = amount
	err = p.debit(ctx, t, sam, cr, Sale{ID: id, AmountFen: amount}, rep, after)
	after.add(func() error {
		if err := sam.Close(); err != nil {
			p.logger().Warn("closing PSAM session", "err", err)
		}
		return nil
	})
	rep.Close.JournalID, rep.Close.Closed = rep.JournalID, rep.Paid
	if errors.Is(err, ErrSaleInDoubt) {
		err = fmt.Errorf("%w: %w", ErrCloseInDoubt, err)
	}
	if rep.Paid {
		p.logger().Info("card closed: its balance debited, owed back by the host", "card", redact.CardNumber(card),
			"refund", money.Format(amount), "journal", rep.JournalID)
	}
	return true, err
}

// settleAndClose is the money step of a card refused for its expiry at a
// terminal that closes cards: its unfinished purchases are settled, as on
// any refused card, then its close, if the host asked for one, runs as on
// a card in date (closeCard). closing is false when there is none.
func (p *Purchaser) settleAndClose(ctx context.Context, t apdu.Transmitter, cr *CardRead, balance int64,
	openSAM func() (SAMSession, error), rep *PurchaseReport, after *afterCard) (closing bool, err error) {
	rep.Balance = balance
	if err := p.recover(ctx, t, cr, rep); err != nil {
		return false, err
	}
	return p.closeCard(ctx, t, cr, openSAM, rep, after)
}

// closedBefore answers the tap of a card whose closing row this terminal
// has: settled done by this tap's recovery, the card closes now; done
// before, it is closed and served no more; still in doubt, nothing is
// debited again.
func (p *Purchaser) closedBefore(row offline.Row, rep *PurchaseReport) error {
	rep.Close.RefundFen, rep.Close.JournalID = row.AmountFen, row.ID
	if row.Kind == offline.KindRead {
		rep.Close.RefundFen = 0
	}
	if row.State != offline.StateDone {
		return fmt.Errorf("%w (journal row %s): the host settles it; nothing is debited again", ErrCloseInDoubt, row.ID)
	}
	for _, r := range rep.Recovered {
		if r.JournalID == row.ID && r.Applied {
			rep.Close.Closed = true
			rep.Paid, rep.JournalID, rep.TAC = true, row.ID, row.TAC
			return nil
		}
	}
	return fmt.Errorf("%w: %s debited at %s (journal row %s), owed back by the host", ErrCardClosed,
		money.Format(rep.Close.RefundFen), row.Time, row.ID)
}

// closeEmpty records the close of a card that holds nothing: a read row
// naming the close, done, with no command to the card.
func (p *Purchaser) closeEmpty(ctx context.Context, cr *CardRead, rep *PurchaseReport) error {
	row, err := p.Store.Begin(ctx, offline.Row{Kind: offline.KindRead, State: offline.StateDone, Card: cr.Info.CardNumber,
		Purse: cr.Purse.String(), CreditID: rep.Close.ID, Detail: "closing (销户): the card holds nothing, refund due 0.00"})
	if err != nil {
		return fmt.Errorf("journal of the card's close: %w", err)
	}
	rep.Close.JournalID, rep.Close.Closed = row.ID, true
	p.logger().Info("card closed: it held nothing", "card", redact.CardNumber(cr.Info.CardNumber), "journal", row.ID)
	return nil
}

// closeID is the close a purchase row names (its CreditID): the tap's
// close, "" for a sale.
func (r *PurchaseReport) closeID() string {
	if r.Close == nil {
		return ""
	}
	return r.Close.ID
}
