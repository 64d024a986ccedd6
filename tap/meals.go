package tap

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
)

// Errors of the meal periods: the sale is refused before the card changes.
var (
	// ErrOutsidePeriods: the terminal has meal periods and the time is in
	// none of them, so nothing is sold.
	ErrOutsidePeriods = errors.New("outside every meal period: no sales now")
	// ErrNotMealPrice: the amount is not a price of the period now (a
	// menu's prices, or a fixed period's price).
	ErrNotMealPrice = errors.New("not a price of the meal period")
	// ErrMealLimit: the card has used the period's count or amount limit
	// today, by the card's own log and this terminal's journal.
	ErrMealLimit = errors.New("over the meal period's limit")
)

// PeriodMode is how sales in a meal period are priced.
type PeriodMode string

// Period modes.
const (
	PeriodKeyed PeriodMode = "keyed" // the cashier or POS app arms the amount
	PeriodFixed PeriodMode = "fixed" // every tap pays Price, nothing armed
	PeriodMenu  PeriodMode = "menu"  // the POS app arms one of Prices
)

// Period is one meal period (餐别): a daily window of the terminal's local
// time, [Start, End) after midnight, not crossing it.
type Period struct {
	Name       string
	Start, End time.Duration
	Mode       PeriodMode
	// Price is what a tap pays in a fixed period: a card of no class, or
	// of a class without a price of its own in ClassPrices.
	Price int64
	// ClassPrices are a fixed period's prices per identity class.
	ClassPrices map[string]int64
	// Discounts are a keyed or menu period's percent of the amount armed
	// that a card of a class pays, 1 to 99 (discount.go).
	Discounts map[string]int
	// Prices are a menu period's prices.
	Prices []int64
	// MaxCount is the most purchases a card may make in the period each
	// day, MaxAmount the most it may spend in it; zero: no limit.
	MaxCount  int
	MaxAmount int64
}

// Meals are a terminal's meal periods. A nil *Meals (or one with no
// periods) sells keyed at any time, as a terminal without periods always
// did.
type Meals struct {
	Periods []Period
	// Now is the clock of arming and of the status; nil: time.Now. A tap
	// uses its Purchaser's clock.
	Now func() time.Time
	// Classes name a card's identity class by its card type.
	Classes Classes

	// warned are the host's class names not in Classes, logged once.
	warned sync.Map
}

// Classes name a card's identity class (身份) by its own card type, EF
// 0x15 bytes 28-29 (epurse.IssuerInfo.CardType). A card whose type is in
// neither map has no class ("") and pays a period's default price.
type Classes struct {
	// Names are every class of pos.classes, those with no card type (the
	// host's card records give them) too.
	Names map[string]bool
	// Types are whole card types (bytes 28-29); they win over TypeBytes.
	Types map[uint16]string
	// TypeBytes are the type byte alone (byte 28), whatever byte 29 holds.
	TypeBytes map[byte]string
}

// Of is the class of a card of type cardType, "" for none.
func (c Classes) Of(cardType uint16) string {
	if name, ok := c.Types[cardType]; ok {
		return name
	}
	return c.TypeBytes[byte(cardType>>8)]
}

// forClass is the period as a card of class sees it: a fixed period's
// price is the class's own where it has one.
func (p Period) forClass(class string) Period {
	if price, ok := p.ClassPrices[class]; ok && p.Mode == PeriodFixed {
		p.Price = price
	}
	return p
}

func (m *Meals) active() bool { return m != nil && len(m.Periods) > 0 }

func (m *Meals) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// At returns the period t falls in (its local wall clock); ok is false
// outside every period.
func (m *Meals) At(t time.Time) (per Period, ok bool) {
	if !m.active() {
		return Period{}, false
	}
	h, mi, s := t.Clock()
	d := time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute + time.Duration(s)*time.Second
	for _, p := range m.Periods {
		if p.Start <= d && d < p.End {
			return p, true
		}
	}
	return Period{}, false
}

// Current is the period now (Meals.Now).
func (m *Meals) Current() (Period, bool) { return m.At(m.now()) }

// outside is ErrOutsidePeriods naming the periods, for the cashier.
func (m *Meals) outside(t time.Time) error {
	names := make([]string, len(m.Periods))
	for i, p := range m.Periods {
		names[i] = p.Name + " " + p.Window()
	}
	return fmt.Errorf("%w at %s (periods: %s)", ErrOutsidePeriods, t.Format("15:04"), strings.Join(names, ", "))
}

// admitArm checks an amount the cashier arms now: inside a period, and
// one of its prices unless it is keyed. No periods: anything.
func (m *Meals) admitArm(amount int64) error {
	if !m.active() {
		return nil
	}
	t := m.now()
	per, ok := m.At(t)
	if !ok {
		return m.outside(t)
	}
	if per.Mode == PeriodFixed && (amount == per.Price || slices.Contains(slices.Collect(maps.Values(per.ClassPrices)), amount)) {
		return nil // the card's class is not known until the tap
	}
	return per.admits(amount)
}

// admits checks amount against the period's prices.
func (p Period) admits(amount int64) error {
	switch p.Mode {
	case PeriodFixed:
		if amount != p.Price {
			return fmt.Errorf("%w: %s is fixed price %s, not %s", ErrNotMealPrice, p.Name, money.Format(p.Price), money.Format(amount))
		}
	case PeriodMenu:
		if !slices.Contains(p.Prices, amount) {
			return fmt.Errorf("%w: %s sells %s, not %s", ErrNotMealPrice, p.Name, formatPrices(p.Prices), money.Format(amount))
		}
	}
	return nil
}

func formatPrices(fen []int64) string {
	out := make([]string, len(fen))
	for i, f := range fen {
		out[i] = money.Format(f)
	}
	return strings.Join(out, ", ")
}

// Window is the period's "HH:MM-HH:MM".
func (p Period) Window() string { return clock(p.Start) + "-" + clock(p.End) }

func clock(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// bounds are the period's window on t's day as hostapi.TimeLayout text,
// the form both the card's log (its wall clock) and the journal keep, so
// that comparing text compares times.
func (p Period) bounds(t time.Time) (from, to string) {
	day := t.Format("20060102")
	return day + clockSeconds(p.Start), day + clockSeconds(p.End)
}

func clockSeconds(d time.Duration) string {
	return fmt.Sprintf("%02d%02d%02d", int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second))
}

func (p Period) limited() bool { return p.MaxCount > 0 || p.MaxAmount > 0 }

// spend is one purchase of a card, at its card-side time
// (hostapi.TimeLayout).
type spend struct {
	at     string
	amount int64
}

// admitLimits refuses amount when the card's purchases in the period's
// window today (spends, of today) leave no room under its count or amount
// limit.
func (p Period) admitLimits(spends []spend, amount int64, now time.Time) error {
	from, to := p.bounds(now)
	count, sum := 0, int64(0)
	for _, s := range spends {
		if s.at >= from && s.at < to {
			count++
			sum += s.amount
		}
	}
	if p.MaxCount > 0 && count >= p.MaxCount {
		return fmt.Errorf("%w: count limit, the card has made %d of the %d purchase(s) allowed in %s %s today", ErrMealLimit, count, p.MaxCount, p.Name, p.Window())
	}
	if p.MaxAmount > 0 && sum+amount > p.MaxAmount {
		return fmt.Errorf("%w: amount limit, the card has spent %s in %s %s today, the sale is %s, the limit %s", ErrMealLimit,
			money.Format(sum), p.Name, p.Window(), money.Format(amount), money.Format(p.MaxAmount))
	}
	return nil
}

// armFixed arms per's price for a tap with nothing armed, in a fixed
// period; a sale it armed for an earlier period is replaced, or dropped
// outside every fixed period. The sale is the till's like any other, so
// a debit left in doubt ties it to its card (markInDoubt). A sale the
// cashier armed, or one in doubt, is left alone.
func (t *Till) armFixed(per Period, fixed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.doubt != nil || (t.sale != nil && !t.sale.auto) {
		return
	}
	if !fixed {
		t.sale = nil
		return
	}
	if t.sale != nil && t.sale.AmountFen == per.Price {
		return
	}
	t.sale = &Sale{ID: newSaleID(), AmountFen: per.Price, Armed: time.Now(), auto: true}
}

// takeSale is Till.take with the meal periods: in a fixed period a tap
// with nothing armed pays the period's price; outside every period a tap
// with nothing to settle is refused. per is the period now, as the card's
// identity class sees it.
func (p *Purchaser) takeSale(card, class string, now time.Time) (s Sale, inDoubt string, per Period, ok bool, err error) {
	m := p.Till.Meals
	if !m.active() {
		s, inDoubt, err = p.Till.take(card)
		return s, inDoubt, Period{}, false, err
	}
	per, ok = m.At(now)
	per = per.forClass(class)
	p.Till.armFixed(per, ok && per.Mode == PeriodFixed)
	if s, inDoubt, err = p.Till.take(card); err != nil {
		return s, inDoubt, per, ok, err
	}
	if s.ID == "" && !ok {
		return s, "", per, ok, m.outside(now)
	}
	return s, inDoubt, per, ok, nil
}

// admitPeriod checks a sale taken (and not found paid by an earlier
// debit) against the period now: there is one, and the amount is one of
// its prices.
func (p *Purchaser) admitPeriod(sale Sale, per Period, ok bool, now time.Time) error {
	m := p.Till.Meals
	if !m.active() {
		return nil
	}
	if !ok {
		return m.outside(now)
	}
	return per.admits(sale.AmountFen)
}

// checkLimits is the limits of a sale: the period's count and amount
// limits, which no PIN lifts, then the daily limit. The card's purchases
// of today are read once for both (its log may cost APDUs).
func (p *Purchaser) checkLimits(ctx context.Context, t apdu.Transmitter, cr *CardRead, sale Sale, per Period, ok bool, now time.Time, rep *PurchaseReport) error {
	meal := ok && per.limited()
	if p.dailyLimit() <= 0 && !meal {
		return nil
	}
	spends, err := p.todaysPurchases(ctx, t, cr)
	if err != nil {
		return err
	}
	if meal {
		if err := per.admitLimits(spends, sale.AmountFen, now); err != nil {
			return err
		}
	}
	var spent int64
	for _, s := range spends {
		spent += s.amount
	}
	return p.checkLimit(t, sale, spent, rep)
}

// mealLimitsM1 is the period's limits of an M1 wallet's sale: the wallet
// keeps no log, so this terminal's journal alone counts.
func (p *Purchaser) mealLimitsM1(ctx context.Context, card string, sale Sale, per Period, ok bool, now time.Time) error {
	if !ok || !per.limited() {
		return nil
	}
	rows, err := p.Store.PurchasesOn(ctx, card, now.Format("20060102"))
	if err != nil {
		return err
	}
	spends := make([]spend, len(rows))
	for i, r := range rows {
		spends[i] = spend{at: r.Time, amount: r.AmountFen}
	}
	return per.admitLimits(spends, sale.AmountFen, now)
}

// logSpends are the purchases of today in the card's log records, each
// (type, counter) once, and the keys seen.
func logSpends(recs []epurse.LogRecord, today string) ([]spend, map[logKey]bool) {
	seen := map[logKey]bool{}
	var out []spend
	for _, r := range recs {
		k := logKey{r.Type, r.Counter}
		if !isPurchase(r.Type) || r.Time.Format("20060102") != today || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, spend{at: r.Time.Format(hostapi.TimeLayout), amount: r.Amount})
	}
	return out, seen
}

// logKey names one transaction of a card: its purse's type and counter.
type logKey struct {
	typ     epurse.TxType
	counter uint16
}
