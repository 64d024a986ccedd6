package localapi

import (
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/tap"
)

// MealPeriodView is a meal period (餐别) as the status shows it: what the
// POS app may arm in it, and its limits per card.
type MealPeriodView struct {
	Name  string `json:"name"`
	Start string `json:"start"` // "11:00"
	End   string `json:"end"`   // "13:30", exclusive
	Mode  string `json:"mode"`  // keyed, fixed or menu
	// PriceFen and Price are a fixed period's price, which a tap pays with
	// nothing armed.
	PriceFen int64  `json:"price_fen,omitempty"`
	Price    string `json:"price,omitempty"`
	// ClassPrices are a fixed period's prices per identity class (yuan),
	// which a card of that class pays instead of Price.
	ClassPrices map[string]string `json:"class_prices,omitempty"`
	// Discounts are a keyed or menu period's percent of the amount armed
	// that a card of a class pays (80: 八折).
	Discounts map[string]int `json:"discounts,omitempty"`
	// PricesFen and Prices are a menu period's prices: the only amounts
	// POST /v1/purchase/arm takes in it.
	PricesFen []int64  `json:"prices_fen,omitempty"`
	Prices    []string `json:"prices,omitempty"`
	// MaxCount and MaxAmountFen limit each card in the period each day
	// (0: none).
	MaxCount     int   `json:"max_count"`
	MaxAmountFen int64 `json:"max_amount_fen"`
}

// mealStatus is the meal period now for the status: the period (nil
// outside every one), and whether the terminal is outside every period.
// A terminal without periods has neither.
func mealStatus(till *tap.Till) (*MealPeriodView, bool) {
	if till == nil || till.Meals == nil || len(till.Meals.Periods) == 0 {
		return nil, false
	}
	per, ok := till.Meals.Current()
	if !ok {
		return nil, true
	}
	v := &MealPeriodView{Name: per.Name, Start: per.Window()[:5], End: per.Window()[6:], Mode: string(per.Mode),
		MaxCount: per.MaxCount, MaxAmountFen: per.MaxAmount, Discounts: per.Discounts}
	if per.Mode == tap.PeriodFixed {
		v.PriceFen, v.Price = per.Price, money.Format(per.Price)
		for class, fen := range per.ClassPrices {
			if v.ClassPrices == nil {
				v.ClassPrices = map[string]string{}
			}
			v.ClassPrices[class] = money.Format(fen)
		}
	}
	for _, p := range per.Prices {
		v.PricesFen = append(v.PricesFen, p)
		v.Prices = append(v.Prices, money.Format(p))
	}
	return v, false
}

// DiscountView is what a card's identity class took off a sale: the list
// price armed, the percent the class pays, the amount off; the purchase's
// amount_fen is what the card paid.
type DiscountView struct {
	Class       string `json:"class"`
	Percent     int    `json:"percent"`
	ListFen     int64  `json:"list_fen"`
	List        string `json:"list"`
	DiscountFen int64  `json:"discount_fen"`
	Discount    string `json:"discount"`
}

func discountView(d *tap.Discount) *DiscountView {
	if d == nil {
		return nil
	}
	off := d.ListFen - d.AmountFen
	return &DiscountView{Class: d.Class, Percent: d.Percent, ListFen: d.ListFen, List: money.Format(d.ListFen), DiscountFen: off, Discount: money.Format(off)}
}
