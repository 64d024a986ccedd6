package tap

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cardd/cardd/money"
)

// Errors of arming a sale.
var (
	ErrBadSale     = errors.New("bad sale")
	ErrSaleInDoubt = errors.New("the last sale's card left before it answered")
	ErrSaleInTap   = errors.New("the sale is being paid by a card right now")
)

// Sale is a purchase armed for the next tap: the cashier keyed Amount, and
// PIN is the cardholder's PIN when the POS app collected it (needed above the
// daily limit). PIN never appears in a log or an API answer.
type Sale struct {
	ID        string
	AmountFen int64
	PIN       string `json:"-"`
	Armed     time.Time
	// Split lets the card pay part of the sale when it holds less: the
	// tap debits what it holds, at most CapFen when positive, and the
	// rest is collected by other means (split.go).
	Split  bool
	CapFen int64
	// auto: armed by a fixed meal period, not the cashier (armFixed).
	auto bool
}

// SaleView is a Sale as the local API shows it.
type SaleView struct {
	ID        string `json:"id"`
	AmountFen int64  `json:"amount_fen"`
	Amount    string `json:"amount"`
	HasPIN    bool   `json:"has_pin"`
	Armed     string `json:"armed"`
	// Split and CapFen are the sale's split payment terms (split.go).
	Split  bool  `json:"split,omitempty"`
	CapFen int64 `json:"cap_fen,omitempty"`
	// InDoubtCard is set while the sale waits for the card that left
	// in the middle of its debit (masked).
	InDoubtCard string `json:"in_doubt_card,omitempty"`
}

// Till holds the sale armed at a POS: at most one, taken by the next tap
// that completes it. Its zero value is an empty till. It is safe for
// concurrent use (the local API arms, the tap loop takes).
type Till struct {
	// MaxPurchase refuses a sale above it; zero means no maximum.
	MaxPurchase int64
	// Meals, when set, are the meal periods: a sale is armed inside one
	// only, at one of its prices unless it is keyed (meals.go).
	Meals *Meals
	// Shift, when set (pos.require_shift), says whether a cashier's shift
	// is open: an error (ErrNoShift when none is) refuses arming a sale,
	// and a tap's sale, armed or fixed (shift.go).
	Shift func() error

	mu   sync.Mutex
	sale *Sale
	// doubt is the card and journal row of a debit whose answer never came:
	// until that card is back and settles it, the sale cannot go to another
	// card (it may already be paid).
	doubt *doubt
	// inTap is set while a tap holds the sale (take to release): the sale
	// cannot be replaced or cancelled under a debit in flight.
	inTap bool
}

type doubt struct {
	card, journalID string
}

// Arm arms a sale of amount fen for the next tap, replacing one armed and not
// yet paid. pin may be empty. While a sale is in doubt (its card left during
// the debit) the same sale can be re-armed only with its amount, say to add
// the PIN: a new amount would let the cashier charge twice.
func (t *Till) Arm(amount int64, pin string) (Sale, error) {
	return t.arm(Sale{AmountFen: amount, PIN: pin})
}

// arm is Arm of a sale's terms: amount, PIN and split.
func (t *Till) arm(terms Sale) (Sale, error) {
	amount, pin := terms.AmountFen, terms.PIN
	if amount <= 0 {
		return Sale{}, fmt.Errorf("%w: amount %s must be positive", ErrBadSale, money.Format(amount))
	}
	if t.MaxPurchase > 0 && amount > t.MaxPurchase {
		return Sale{}, fmt.Errorf("%w: amount %s is over the per-purchase maximum of %s", ErrBadSale, money.Format(amount), money.Format(t.MaxPurchase))
	}
	if err := t.Meals.admitArm(amount); err != nil {
		return Sale{}, err
	}
	if err := t.shiftOpen(); err != nil {
		return Sale{}, err
	}
	if pin != "" {
		if len(pin) < 4 || len(pin) > 12 {
			return Sale{}, fmt.Errorf("%w: a PIN is 4 to 12 digits", ErrBadSale)
		}
		for _, c := range pin {
			if c < '0' || c > '9' {
				return Sale{}, fmt.Errorf("%w: a PIN is 4 to 12 digits", ErrBadSale)
			}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.inTap {
		return Sale{}, fmt.Errorf("%w: wait for the tap to end", ErrSaleInTap)
	}
	if t.doubt != nil && t.sale != nil {
		if amount != t.sale.AmountFen || terms.Split != t.sale.Split || terms.CapFen != t.sale.CapFen {
			return Sale{}, fmt.Errorf("%w: tap that card again to settle the sale of %s first", ErrSaleInDoubt, money.Format(t.sale.AmountFen))
		}
		t.sale.PIN = pin
		return *t.sale, nil
	}
	s := &Sale{ID: newSaleID(), AmountFen: amount, PIN: pin, Armed: time.Now(), Split: terms.Split, CapFen: terms.CapFen}
	t.sale, t.doubt = s, nil
	return *s, nil
}

// Disarm cancels the armed sale. A sale in doubt is cancelled too: the
// journal still settles its debit from the card on its next tap, but no
// later tap will take it as this sale.
func (t *Till) Disarm() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.inTap {
		return fmt.Errorf("%w: wait for the tap to end", ErrSaleInTap)
	}
	t.sale, t.doubt = nil, nil
	return nil
}

// RestoreInDoubt re-arms, after a restart, the sale whose debit a previous
// run journaled and never saw answered (money rule 3): tied to that card
// until its next tap settles the row, so the cashier cannot charge the
// same purchase again meanwhile. The status shows it in doubt.
func (t *Till) RestoreInDoubt(card, journalID string, amount int64) {
	t.restore(card, journalID, Sale{AmountFen: amount})
}

// restore is RestoreInDoubt of a sale's terms.
func (t *Till) restore(card, journalID string, terms Sale) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sale = &Sale{ID: newSaleID(), AmountFen: terms.AmountFen, Armed: time.Now(), Split: terms.Split, CapFen: terms.CapFen}
	t.doubt = &doubt{card: card, journalID: journalID}
}

// Armed returns the armed sale, if any.
func (t *Till) Armed() (Sale, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sale == nil {
		return Sale{}, false
	}
	return *t.sale, true
}

// View is the armed sale for the local API; ok is false with none.
func (t *Till) View(mask func(string) string) (SaleView, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sale == nil {
		return SaleView{}, false
	}
	v := SaleView{ID: t.sale.ID, AmountFen: t.sale.AmountFen, Amount: money.Format(t.sale.AmountFen),
		HasPIN: t.sale.PIN != "", Armed: t.sale.Armed.Format(time.RFC3339), Split: t.sale.Split, CapFen: t.sale.CapFen}
	if t.doubt != nil {
		v.InDoubtCard = mask(t.doubt.card)
	}
	return v, true
}

// take returns the sale a tap of card may pay and holds it for the tap
// until release: the armed one, unless it is in doubt on another card.
// inDoubt is the journal row to settle first when it is in doubt on this
// card.
func (t *Till) take(card string) (s Sale, inDoubt string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sale == nil {
		return Sale{}, "", nil
	}
	if t.doubt != nil {
		if t.doubt.card != card {
			return Sale{}, "", fmt.Errorf("%w: the sale of %s waits for that card", ErrSaleInDoubt, money.Format(t.sale.AmountFen))
		}
		t.inTap = true
		return *t.sale, t.doubt.journalID, nil
	}
	t.inTap = true
	return *t.sale, "", nil
}

// release ends a tap's hold on the sale.
func (t *Till) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inTap = false
}

// dropPIN forgets the PIN of sale id: the card refused it, and sending it
// again would use up the cardholder's tries (or reach another card).
func (t *Till) dropPIN(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sale != nil && t.sale.ID == id {
		t.sale.PIN = ""
	}
}

// markInDoubt ties sale id to the card whose debit did not answer.
func (t *Till) markInDoubt(id, card, journalID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sale != nil && t.sale.ID == id {
		t.doubt = &doubt{card: card, journalID: journalID}
	}
}

// clearDoubt frees sale id to be taken by any card again: its debit proved
// not to have happened.
func (t *Till) clearDoubt(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sale != nil && t.sale.ID == id {
		t.doubt = nil
	}
}

// paid removes sale id: it is on the card.
func (t *Till) paid(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sale != nil && t.sale.ID == id {
		t.sale, t.doubt = nil, nil
	}
}

func newSaleID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
