package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/cardd/cardd/money"
)

// Meal period modes (pos.periods[].mode).
const (
	PeriodKeyed = "keyed" // the cashier or POS app arms the amount
	PeriodFixed = "fixed" // every tap pays price, nothing armed
	PeriodMenu  = "menu"  // the POS app arms one of prices
)

// PeriodConfig is one meal period (餐别) of pos.periods: a daily window of
// the terminal's local time and how sales in it are priced and limited.
// Amounts are yuan strings read by package money, never floats.
type PeriodConfig struct {
	Name string `mapstructure:"name"`
	// Start and End are "HH:MM", the window [Start, End) of each day;
	// End is after Start ("24:00" is the end of the day).
	Start string `mapstructure:"start"`
	End   string `mapstructure:"end"`
	// Mode is keyed, fixed or menu.
	Mode string `mapstructure:"mode"`
	// Price is the set price of a fixed period.
	Price string `mapstructure:"price"`
	// ClassPrices are a fixed period's prices per identity class of
	// pos.classes; a card of no class, or of a class not here, pays Price.
	ClassPrices map[string]string `mapstructure:"class_prices"`
	// Discounts are a keyed or menu period's discounts per identity
	// class: the percent of the price armed that a card of the class
	// pays (80: 八折), 1 to 99; a class not here pays the price.
	Discounts map[string]int `mapstructure:"discounts"`
	// Prices are the menu's prices of a menu period.
	Prices []string `mapstructure:"prices"`
	// MaxCount is how many purchases a card may make in the period each
	// day (0: no limit); MaxAmount how much it may spend in it ("" or "0":
	// no limit).
	MaxCount  int    `mapstructure:"max_count"`
	MaxAmount string `mapstructure:"max_amount"`
}

// maxPeriods and maxMenuPrices bound pos.periods: a day has few meals, and
// a menu is buttons on the POS app's screen.
const (
	maxPeriods    = 12
	maxMenuPrices = 16
	maxPeriodName = 32
)

// Minutes parses a period's "HH:MM" into minutes after midnight; end
// allows "24:00".
func periodClock(s string, end bool) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || s[0] == '-' || s[3] == '-' || h < 0 || m < 0 || m > 59 {
		return 0, false
	}
	if h == 24 && m == 0 && end {
		return 24 * 60, true
	}
	if h > 23 {
		return 0, false
	}
	return h*60 + m, true
}

// StartMinute and EndMinute are the window in minutes after midnight; the
// config must be valid.
func (p PeriodConfig) StartMinute() int { m, _ := periodClock(p.Start, false); return m }

// EndMinute: see StartMinute.
func (p PeriodConfig) EndMinute() int { m, _ := periodClock(p.End, true); return m }

// PriceFen is Price in fen (0 when unset); the config must be valid.
func (p PeriodConfig) PriceFen() int64 { fen, _ := money.Parse(p.Price); return fen }

// PricesFen are Prices in fen; the config must be valid.
func (p PeriodConfig) PricesFen() []int64 {
	out := make([]int64, 0, len(p.Prices))
	for _, s := range p.Prices {
		fen, _ := money.Parse(s)
		out = append(out, fen)
	}
	return out
}

// MaxAmountFen is MaxAmount in fen, 0 for no limit; the config must be
// valid.
func (p PeriodConfig) MaxAmountFen() int64 { fen, _ := money.Parse(p.MaxAmount); return fen }

// validatePeriods checks pos.periods: each key of each entry is named in
// its error as pos.periods[N].key, N counting from 1.
func (c *Config) validatePeriods(p *problems) {
	ps := c.POS.Periods
	if len(ps) > maxPeriods {
		p.bad("pos.periods", strconv.Itoa(len(ps))+" entries", "at most %d meal periods", maxPeriods)
	}
	maxFen := c.POS.MaxPurchaseFen()
	names := map[string]int{}
	for i, per := range ps {
		key := func(k string) string { return fmt.Sprintf("pos.periods[%d].%s", i+1, k) }
		switch n := strings.TrimSpace(per.Name); {
		case n == "" || n != per.Name || utf8.RuneCountInString(n) > maxPeriodName || strings.ContainsFunc(n, isControl):
			p.bad(key("name"), per.Name, "must name the period (breakfast, lunch, 午餐…): 1 to %d characters, no surrounding spaces", maxPeriodName)
		case names[n] > 0:
			p.bad(key("name"), per.Name, "repeats the name of pos.periods[%d]", names[n])
		default:
			names[n] = i + 1
		}
		start, okS := periodClock(per.Start, false)
		if !okS {
			p.bad(key("start"), per.Start, "must be a time of day \"HH:MM\", 00:00 to 23:59, like \"11:00\"")
		}
		end, okE := periodClock(per.End, true)
		switch {
		case !okE:
			p.bad(key("end"), per.End, "must be a time of day \"HH:MM\", 00:01 to 24:00, like \"13:30\"")
		case okS && end <= start:
			p.bad(key("end"), per.End, "must be after start (%s): a period ends on the day it starts", per.Start)
		}
		per.validatePricing(p, key, maxFen, c.POS.Classes)
		if per.MaxCount < 0 {
			p.bad(key("max_count"), strconv.Itoa(per.MaxCount), "must be 0 (no limit) or more: the purchases a card may make in the period each day")
		}
		if per.MaxAmount != "" {
			if fen, err := money.Parse(per.MaxAmount); err != nil || fen < 0 || fen > 0xFFFFFFFF {
				p.bad(key("max_amount"), per.MaxAmount, "must be an amount in yuan, 0 (no limit) to 42949672.95, like \"30.00\"")
			}
		}
		if !okS || !okE || end <= start {
			continue
		}
		for j, other := range ps[:i] {
			os, ok1 := periodClock(other.Start, false)
			oe, ok2 := periodClock(other.End, true)
			if ok1 && ok2 && start < oe && os < end {
				p.bad(key("start"), per.Start+"-"+per.End, "overlaps pos.periods[%d] (%s %s-%s): a tap must fall in one period only", j+1, other.Name, other.Start, other.End)
			}
		}
	}
}

// validatePricing checks mode, price and prices of one period.
func (per PeriodConfig) validatePricing(p *problems, key func(string) string, maxFen int64, classes map[string][]string) {
	yuan := func(k, s string) {
		fen, err := money.Parse(s)
		switch {
		case err != nil || fen <= 0:
			p.bad(key(k), s, "must be an amount in yuan above 0, like \"12.00\"")
		case maxFen > 0 && fen > maxFen:
			p.bad(key(k), s, "is over pos.max_purchase (%s): it could never be armed", money.Format(maxFen))
		}
	}
	per.validateClassPrices(p, key, classes, yuan)
	per.validateDiscounts(p, key, classes)
	switch per.Mode {
	case PeriodKeyed:
		if per.Price != "" {
			p.bad(key("price"), per.Price, "only a fixed period has a price: a keyed one takes the amount the cashier arms")
		}
		if len(per.Prices) > 0 {
			p.bad(key("prices"), strings.Join(per.Prices, ", "), "only a menu period has prices")
		}
	case PeriodFixed:
		if per.Price == "" {
			p.bad(key("price"), "", "required in a fixed period: what every tap pays, like \"12.00\"")
		} else {
			yuan("price", per.Price)
		}
		if len(per.Prices) > 0 {
			p.bad(key("prices"), strings.Join(per.Prices, ", "), "only a menu period has prices: a fixed one has price")
		}
	case PeriodMenu:
		if per.Price != "" {
			p.bad(key("price"), per.Price, "a menu period has prices, not price")
		}
		if len(per.Prices) == 0 || len(per.Prices) > maxMenuPrices {
			p.bad(key("prices"), strings.Join(per.Prices, ", "), "a menu period needs 1 to %d prices in yuan, like [\"8.00\", \"12.00\"]", maxMenuPrices)
		}
		seen := map[int64]bool{}
		for _, s := range per.Prices {
			yuan("prices", s)
			if fen, err := money.Parse(s); err == nil && seen[fen] {
				p.bad(key("prices"), s, "repeats an earlier price")
			} else {
				seen[fen] = true
			}
		}
	default:
		oneOf(p.bad, key("mode"), per.Mode, PeriodKeyed, PeriodFixed, PeriodMenu)
	}
}

var periodsType = reflect.TypeFor[[]PeriodConfig]()

// decodePeriods stores pos.periods: a list of mappings from the file, or
// the same as YAML text from the environment
// (CARDD_POS_PERIODS='[{name: lunch, start: "11:00", …}]'). Each entry's
// keys are decoded as the top-level keys are, strictly; an empty list is
// no periods (nil), so that WriteEffective's "[]" loads back the same.
func decodePeriods(dst reflect.Value, raw any) *decodeError {
	raw, bad := yamlText(raw, "a YAML list of periods, like [{name: lunch, start: \"11:00\", end: \"13:00\", mode: keyed}]")
	if bad != nil || raw == nil {
		return bad
	}
	if ps, ok := raw.([]PeriodConfig); ok { // the default
		dst.Set(reflect.ValueOf(ps))
		return nil
	}
	items, ok := raw.([]any)
	if !ok {
		return badValue("must be a list of periods (name, start, end, mode, …), got a %s", kindName(raw))
	}
	if len(items) == 0 {
		dst.Set(reflect.Zero(periodsType))
		return nil
	}
	out := make([]PeriodConfig, len(items))
	for i, it := range items {
		if bad := decodeStruct(reflect.ValueOf(&out[i]).Elem(), it); bad != nil {
			return &decodeError{reason: fmt.Sprintf("entry %d: %s", i+1, bad.reason), entry: it}
		}
	}
	dst.Set(reflect.ValueOf(out))
	return nil
}

// yamlText parses raw when it is text (the environment's form of a list
// or a mapping) as YAML, want naming the form in the error; nil for empty
// text. Any other raw is returned as it is.
func yamlText(raw any, want string) (any, *decodeError) {
	s, ok := raw.(string)
	if !ok {
		return raw, nil
	}
	var v any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		return nil, badValue("must be %s: %v", want, err)
	}
	return v, nil
}

// mapping is raw as a mapping with string keys (YAML may give any keys).
func mapping(raw any) (map[string]any, *decodeError) {
	switch r := raw.(type) {
	case map[string]any:
		return r, nil
	case map[any]any:
		m := make(map[string]any, len(r))
		for k, v := range r {
			m[fmt.Sprint(k)] = v
		}
		return m, nil
	}
	return nil, badValue("must be a mapping, got a %s", kindName(raw))
}

// decodeStruct stores a mapping into the struct dst by its mapstructure
// tags (keys compared without case, as viper does); a key it does not
// have is an error.
func decodeStruct(dst reflect.Value, raw any) *decodeError {
	m, bad := mapping(raw)
	if bad != nil {
		return bad
	}
	t := dst.Type()
	var known []string
	for i := range t.NumField() {
		known = append(known, t.Field(i).Tag.Get("mapstructure"))
	}
	for k, v := range m {
		i := -1
		for j, name := range known {
			if strings.EqualFold(k, name) {
				i = j
			}
		}
		if i < 0 {
			return badValue("unknown key %q (want %s)", k, strings.Join(known, ", "))
		}
		if v == nil {
			continue
		}
		if bad := decode(dst.Field(i), v); bad != nil {
			return badValue("%s %s", known[i], bad.reason)
		}
	}
	return nil
}

// yamlMapping renders a struct as a YAML flow mapping of its non-zero
// fields (an absent key decodes to the zero value, so it loads back the
// same).
func yamlMapping(v reflect.Value) string {
	var parts []string
	for i := range v.NumField() {
		if f := v.Field(i); !f.IsZero() {
			parts = append(parts, v.Type().Field(i).Tag.Get("mapstructure")+": "+yamlValue("", f))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
