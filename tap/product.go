package tap

import (
	"context"
	"fmt"
	"time"

	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
)

// loadCap is the most card may hold after a load: the smaller of
// ceiling, the terminal's own cap, and the cap of the card's product (卡种)
// as last pulled from the host. overCap words a refusal as the host does,
// naming the product when its cap is the smaller (else it says what, "the
// card" or "the wallet", would hold too much). why is set, and no load may
// go on, when the card's product is past its last valid day.
func (l *Loader) loadCap(ctx context.Context, card string, ceiling int64, what string) (capFen int64, overCap func(held, amount int64) string, why string, err error) {
	capFen = ceiling
	overCap = func(held, amount int64) string {
		return fmt.Sprintf("%s would hold %s, over the balance cap of %s", what, money.Format(held+amount), money.Format(capFen))
	}
	p, ok, err := l.Store.CardProduct(ctx, card)
	if err != nil || !ok {
		return capFen, overCap, "", err
	}
	if p.Expired(l.now()) {
		return capFen, overCap, fmt.Sprintf("%s card: its product was valid until %s; no load", p.Name, p.ValidUntil), nil
	}
	if p.CapFen < capFen {
		capFen = p.CapFen
		overCap = func(held, amount int64) string {
			return fmt.Sprintf("%s card: balance %s + %s = %s would exceed its cap of %s", p.Name,
				money.Format(held), money.Format(amount), money.Format(held+amount), money.Format(capFen))
		}
	}
	return capFen, overCap, "", nil
}

// ownCap is the terminal's own cap on what a card may hold after a load
// (load.balance_cap): 1000.00 when the Loader leaves it zero.
func (l *Loader) ownCap() int64 {
	if l.BalanceCap <= 0 {
		return 100000
	}
	return l.BalanceCap
}

// productExpired refuses a card whose product (as last pulled) is past its
// last valid day at now: the tap ends as for a card past its own expiry
// date (ErrCardExpired), so it neither loads nor pays, and an unfinished
// purchase of it is still settled.
func productExpired(ctx context.Context, st *offline.Store, card string, now time.Time) error {
	p, ok, err := st.CardProduct(ctx, card)
	if err != nil || !ok || !p.Expired(now) {
		return err
	}
	return fmt.Errorf("%w: its product %s was valid until %s", ErrCardExpired, p.Name, p.ValidUntil)
}
