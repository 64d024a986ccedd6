package localapi

import (
	"fmt"

	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/tap"
)

// SplitView is a split sale's outcome on a tap (组合支付), in fen and
// yuan: what the card paid and what the POS app collects by other means.
// CardFen 0 is a card that held nothing: the whole sale is to collect, and
// the sale is no longer armed.
type SplitView struct {
	SaleFen    int64  `json:"sale_fen"`
	CapFen     int64  `json:"cap_fen,omitempty"`
	CardFen    int64  `json:"card_fen"`
	CardPaid   string `json:"card_paid"`
	CollectFen int64  `json:"collect_fen"`
	Collect    string `json:"collect"`
}

func splitView(s *tap.SplitParts) *SplitView {
	if s == nil {
		return nil
	}
	return &SplitView{SaleFen: s.SaleFen, CapFen: s.CapFen, CardFen: s.CardFen, CardPaid: money.Format(s.CardFen),
		CollectFen: s.CollectFen, Collect: money.Format(s.CollectFen)}
}

// armTill arms req's sale of fen on till: split, with its cap, when
// req.Split; else whole. A cap without split is refused (tap.ErrBadSale):
// the cashier meant something the sale would not do.
func armTill(till *tap.Till, fen int64, req ArmRequest) (tap.Sale, error) {
	if !req.Split {
		if req.Cap != "" {
			return tap.Sale{}, fmt.Errorf("%w: cap %q is for a split sale: send \"split\": true with it", tap.ErrBadSale, req.Cap)
		}
		return till.Arm(fen, req.PIN)
	}
	var capFen int64
	if req.Cap != "" {
		c, err := money.Parse(req.Cap)
		if err != nil || c <= 0 {
			return tap.Sale{}, fmt.Errorf("%w: cap %q: want yuan above 0 with at most two decimals, like \"20.00\"", tap.ErrBadSale, req.Cap)
		}
		capFen = c
	}
	return till.ArmSplit(fen, capFen, req.PIN)
}
