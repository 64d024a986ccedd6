package tap

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/redact"
)

// A split sale (组合支付) is paid partly by the card: the tap debits what
// the card holds, at most the cap the cashier allowed, and the POS app
// collects the rest by other means. The card part is an ordinary purchase
// (write-ahead row, recovery from the card's counter, daily limit and PIN
// on it alone); the journal row's detail carries the split's terms
// (SplitParts.note), written with the row before DEBIT, so a receipt, a
// recovery on a later tap and a restart all know the remainder.

// ErrSplitM1 refuses a split sale to an M1 wallet card, which pays whole
// sales only: the sale stays armed for an e-purse card, or to be armed
// again not split.
var ErrSplitM1 = errors.New("split payment needs an e-purse card; an M1 wallet card pays whole sales only")

// SplitParts is how a split sale is paid, in fen: CardFen by the card,
// CollectFen by other means; SaleFen is their sum, the amount armed, and
// CapFen the most the cashier let the card pay (0: no cap).
type SplitParts struct {
	SaleFen    int64 `json:"sale_fen"`
	CapFen     int64 `json:"cap_fen,omitempty"`
	CardFen    int64 `json:"card_fen"`
	CollectFen int64 `json:"collect_fen"`
}

// ArmSplit arms a split sale of amount fen: the card pays what it holds, at
// most capFen when positive (capFen 0: no cap), and the tap's outcome gives
// the remainder to collect. pin is as for Arm.
func (t *Till) ArmSplit(amount, capFen int64, pin string) (Sale, error) {
	if capFen < 0 || capFen > amount {
		return Sale{}, fmt.Errorf("%w: cap %s must be above 0 and at most the sale's %s", ErrBadSale, money.Format(capFen), money.Format(amount))
	}
	return t.arm(Sale{AmountFen: amount, PIN: pin, Split: true, CapFen: capFen})
}

// RestoreJournaled is RestoreInDoubt of the write-ahead row of a debit a
// previous run never saw answered, with the split terms its detail
// carries: a split sale comes back split, for its whole amount.
func (t *Till) RestoreJournaled(row offline.Row) {
	terms := Sale{AmountFen: row.AmountFen}
	if s, ok := SplitOf(row); ok {
		terms = Sale{AmountFen: s.SaleFen, Split: true, CapFen: s.CapFen}
	}
	if d, ok := DiscountOf(row); ok {
		// The sale as armed: a tap after a failed debit discounts it again.
		terms.AmountFen = d.ListFen
	}
	t.restore(row.Card, row.ID, terms)
}

// splitParts divides sale between a card holding balance and other means.
// A card holding the whole amount (or more) pays it all: nothing to
// collect.
func splitParts(sale Sale, balance int64) SplitParts {
	card := min(sale.AmountFen, max(balance, 0))
	if sale.CapFen > 0 {
		card = min(card, sale.CapFen)
	}
	return SplitParts{SaleFen: sale.AmountFen, CapFen: sale.CapFen, CardFen: card, CollectFen: sale.AmountFen - card}
}

// splitFormat is the head of a split row's detail: for people, and read
// back by SplitOf.
const (
	splitHead   = "split: sale_fen="
	splitFormat = splitHead + "%d cap_fen=%d card_fen=%d collect_fen=%d"
)

func (s SplitParts) note() string {
	return fmt.Sprintf(splitFormat, s.SaleFen, s.CapFen, s.CardFen, s.CollectFen)
}

// SplitOf reads the split terms a purchase row's detail carries; ok is
// false for a row of a sale not split, or terms that do not add up to the
// row's amount.
func SplitOf(row offline.Row) (s SplitParts, ok bool) {
	i := strings.Index(row.Detail, splitHead)
	if row.Kind != offline.KindPurchase || i < 0 {
		return SplitParts{}, false
	}
	n, err := fmt.Sscanf(row.Detail[i:], splitFormat, &s.SaleFen, &s.CapFen, &s.CardFen, &s.CollectFen)
	if err != nil || n != 4 || s.CardFen != row.AmountFen || s.CollectFen < 0 || s.SaleFen != s.CardFen+s.CollectFen {
		return SplitParts{}, false
	}
	return s, true
}

// withSplit keeps a row's split and discount terms in a detail that
// replaces the row's, after it: a detail's head says what happened
// (MAC2Alarm first, for the host). "" keeps the row's detail as it is
// (offline.Store).
func withSplit(row offline.Row, detail string) string {
	if detail == "" {
		return detail
	}
	if d, ok := DiscountOf(row); ok && !strings.Contains(detail, discountHead) {
		detail += "; " + d.note()
	}
	if s, ok := SplitOf(row); ok && !strings.Contains(detail, splitHead) {
		detail += "; " + s.note()
	}
	return detail
}

// saleFacts is what a purchase row of rep records of its sale for the
// shift's close-out: period, class, PIN override, split rest to collect.
func (r *PurchaseReport) saleFacts() offline.SaleFacts {
	f := offline.SaleFacts{Period: r.Period, Class: r.Class, PINVerified: r.PINVerified}
	if r.Split != nil {
		f.CollectFen = r.Split.CollectFen
	}
	return f
}

// splitSale is the part of sale the card pays on this tap: all of a sale
// not split; of a split one, what the card holds (rep.Balance), at most
// its cap, recorded in rep.Split. none is true when that is nothing (an
// empty card): the whole sale is to be
// collected, and it leaves the till, so that no later card pays what the
// POS app now collects by other means.
func (p *Purchaser) splitSale(t apdu.Transmitter, cr *CardRead, sale Sale, rep *PurchaseReport) (charged Sale, none bool, err error) {
	if !sale.Split {
		return sale, false, nil
	}
	if cr.balanceDeferred {
		// The sale was armed split after the read left the balance to
		// INITIALIZE (Runner.defersBalance): the card part needs it first.
		if err := cr.readDeferred(t); err != nil {
			return sale, false, err
		}
		rep.Balance = cr.Balance
	}
	parts := splitParts(sale, rep.Balance)
	rep.Split = &parts
	p.logger().Info("split sale", "card", redact.CardNumber(cr.Info.CardNumber), "sale_fen", parts.SaleFen, "cap_fen", parts.CapFen,
		"card_fen", parts.CardFen, "collect_fen", parts.CollectFen)
	if parts.CardFen == 0 {
		p.Till.paid(sale.ID)
		return sale, true, nil
	}
	sale.AmountFen = parts.CardFen
	return sale, false, nil
}

// splitInDoubt records in rep the split terms of a sale in doubt that its
// row, settled done by this tap, proves paid.
func splitInDoubt(row offline.Row, rep *PurchaseReport) {
	if s, ok := SplitOf(row); ok {
		rep.Split = &s
	}
}
