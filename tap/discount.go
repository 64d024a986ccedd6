package tap

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/redact"
)

// A card's identity class (身份) comes, in this order, from:
//
//  1. the host's card record, pulled like the deny list (offline.Store
//     CardClass), when this terminal has one for the card; a class the
//     terminal's pos.classes does not name is no class (logged once per
//     name): the host said the card is not of the classes priced here,
//     and its type byte must not override that;
//  2. the card's own type byte (Classes.Of, pos.classes), for an e-purse
//     card;
//  3. none: the period's price, no discount.
//
// A keyed or menu period discounts a class's sale (Period.Discounts): the
// card pays Percent of the amount armed, in fen, rounded to the nearest
// fen with halves up (四舍五入), and at least 1 fen. The journal row's
// detail carries the terms (Discount.note), written with the row before
// the debit, so a receipt, a recovery and a restart know the list price.

// Discount is what a card's class took off a sale: ListFen was armed, the
// card pays AmountFen, Percent of it.
type Discount struct {
	Class     string `json:"class"`
	Percent   int    `json:"percent"`
	ListFen   int64  `json:"list_fen"`
	AmountFen int64  `json:"amount_fen"`
}

// Discounted is Percent of listFen in whole fen: rounded to the nearest
// fen, halves up, and at least 1 fen (a debit of nothing is no sale).
// Integer arithmetic only: listFen is at most a purchase's 4 bytes.
func Discounted(listFen int64, percent int) int64 {
	return max(1, (listFen*int64(percent)+50)/100)
}

// Known reports whether name is a class of the terminal's pos.classes.
func (c Classes) Known(name string) bool {
	if c.Names[name] {
		return true
	}
	for _, n := range c.Types {
		if n == name {
			return true
		}
	}
	for _, n := range c.TypeBytes {
		if n == name {
			return true
		}
	}
	return false
}

// cardClass is card's identity class at a terminal with meal periods (""
// without: a class only prices a period's sale), by the order above;
// hasType says cardType was read (an M1 wallet has none).
func (p *Purchaser) cardClass(ctx context.Context, card string, cardType uint16, hasType bool) (string, error) {
	m := p.Till.Meals
	if !m.active() {
		return "", nil
	}
	host, err := p.Store.CardClass(ctx, card)
	if err != nil {
		return "", err
	}
	switch {
	case host != "" && m.Classes.Known(host):
		return host, nil
	case host != "":
		m.unknownClass(host, card, p.logger())
		return "", nil
	case hasType:
		return m.Classes.Of(cardType), nil
	}
	return "", nil
}

// unknownClass logs, once per name, a host's class pos.classes does not
// name.
func (m *Meals) unknownClass(class, card string, log *slog.Logger) {
	if _, seen := m.warned.LoadOrStore(class, true); seen {
		return
	}
	log.Warn("the host's card record gives a class pos.classes does not name: such cards have no class here (the period's price, no discount)",
		"class", class, "card", redact.CardNumber(card))
}

// discountFor is the percent a card of class pays in the period, ok
// false when it pays the price.
func (p Period) discountFor(class string) (percent int, ok bool) {
	if class == "" || p.Mode == PeriodFixed {
		return 0, false
	}
	percent, ok = p.Discounts[class]
	return percent, ok && percent > 0 && percent < 100
}

// discount is sale as a card of class pays it in per: discounted when the
// period discounts the class, recorded in rep (Discount, and Sale's
// amount: what the sale costs this card).
func discount(sale Sale, per Period, inPeriod bool, class string, rep *PurchaseReport) Sale {
	percent, ok := per.discountFor(class)
	if !inPeriod || !ok {
		return sale
	}
	d := Discount{Class: class, Percent: percent, ListFen: sale.AmountFen, AmountFen: Discounted(sale.AmountFen, percent)}
	rep.Discount = &d
	sale.AmountFen = d.AmountFen
	rep.Sale.AmountFen = d.AmountFen
	return sale
}

// discountHead is the head of a discounted row's terms: for people, and
// read back by DiscountOf. The class is last: a name may hold spaces.
const (
	discountHead   = "discount: list_fen="
	discountFormat = discountHead + "%d percent=%d class=%s"
)

func (d Discount) note() string { return fmt.Sprintf(discountFormat, d.ListFen, d.Percent, d.Class) }

// DiscountOf reads the discount a purchase row's detail carries; ok is
// false for a row of a sale not discounted, or terms that do not parse.
// AmountFen is what the whole sale cost the card (a split sale's card
// part is the row's amount).
func DiscountOf(row offline.Row) (d Discount, ok bool) {
	i := strings.Index(row.Detail, discountHead)
	if row.Kind != offline.KindPurchase || i < 0 {
		return Discount{}, false
	}
	terms := row.Detail[i:]
	if n, err := fmt.Sscanf(terms, discountHead+"%d percent=%d", &d.ListFen, &d.Percent); err != nil || n != 2 ||
		d.ListFen <= 0 || d.Percent < 1 || d.Percent > 99 {
		return Discount{}, false
	}
	_, class, _ := strings.Cut(terms, " class=")
	d.Class, _, _ = strings.Cut(class, "; ")
	d.AmountFen = Discounted(d.ListFen, d.Percent)
	return d, true
}

// rowNote is the detail a purchase row of rep starts with: the discount's
// and the split's terms, or nothing.
func (r *PurchaseReport) rowNote() string {
	var parts []string
	if r.Close != nil {
		parts = append(parts, "closing debit (销户): the whole balance, owed back by the host")
	}
	if r.Discount != nil {
		parts = append(parts, r.Discount.note())
	}
	if r.Split != nil {
		parts = append(parts, r.Split.note())
	}
	return strings.Join(parts, "; ")
}

// discountInDoubt records in rep the discount of a sale in doubt that its
// row, settled done by this tap, proves paid.
func discountInDoubt(row offline.Row, rep *PurchaseReport) {
	if d, ok := DiscountOf(row); ok {
		rep.Discount = &d
		rep.Sale.AmountFen = d.AmountFen
	}
}
