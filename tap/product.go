package tap

import (
	"context"
	"fmt"

	"github.com/cardd/cardd/money"
)

// loadCap is the most the tapped card may hold after a load: the smaller
// of the terminal's own cap (Loader.BalanceCap, 1000.00 when zero) and
// the cap of the card's product (卡种) as last pulled from the host.
// overCap words a refusal as the host does, naming the product when its
// cap is the smaller. why is set, and no load may go on, when the card's
// product is past its last valid day.
func (l *Loader) loadCap(cr *CardRead) (capFen int64, overCap func(held, amount int64) string, why string, err error) {
	capFen = l.BalanceCap
	if capFen <= 0 {
		capFen = 100000
	}
	overCap = func(held, amount int64) string {
		return fmt.Sprintf("the card would hold %s, over the balance cap of %s", money.Format(held+amount), money.Format(capFen))
	}
	p, ok, err := l.Store.CardProduct(context.Background(), cr.Info.CardNumber)
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
