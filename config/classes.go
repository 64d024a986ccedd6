package config

import (
	"encoding/hex"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
)

// maxClasses and maxClassTypes bound pos.classes: a canteen knows a
// handful of identities (student, staff, visitor, …).
const (
	maxClasses    = 16
	maxClassTypes = 16
)

// CardType is one entry of pos.classes: 2 hex digits match the card's type
// byte (EF 0x15 byte 28) whatever byte 29 holds; 4 hex digits match bytes
// 28-29 exactly.
type CardType struct {
	Value uint16 // the type byte in the high byte when !Whole
	Whole bool
}

// ParseCardType reads one entry of pos.classes.
func ParseCardType(s string) (CardType, bool) {
	b, err := hex.DecodeString(s)
	switch {
	case err != nil:
		return CardType{}, false
	case len(b) == 1:
		return CardType{Value: uint16(b[0]) << 8}, true
	case len(b) == 2:
		return CardType{Value: uint16(b[0])<<8 | uint16(b[1]), Whole: true}, true
	}
	return CardType{}, false
}

// ClassTypes are pos.classes parsed, per class; the config must be valid.
func (c POSConfig) ClassTypes() map[string][]CardType {
	out := make(map[string][]CardType, len(c.Classes))
	for name, types := range c.Classes {
		for _, s := range types {
			ct, _ := ParseCardType(s)
			out[name] = append(out[name], ct)
		}
	}
	return out
}

// ClassPricesFen are ClassPrices in fen (nil when none); the config must
// be valid.
func (p PeriodConfig) ClassPricesFen() map[string]int64 {
	if len(p.ClassPrices) == 0 {
		return nil
	}
	out := make(map[string]int64, len(p.ClassPrices))
	for class, s := range p.ClassPrices {
		out[class], _ = money.Parse(s)
	}
	return out
}

// validateClasses checks pos.classes: names, and card types in one class
// only; each problem is keyed pos.classes.NAME.
func (c *Config) validateClasses(p *problems) {
	if len(c.POS.Classes) > maxClasses {
		p.bad("pos.classes", fmt.Sprintf("%d classes", len(c.POS.Classes)), "at most %d identity classes", maxClasses)
	}
	owner := map[CardType]string{}
	for _, name := range slices.Sorted(maps.Keys(c.POS.Classes)) {
		key := "pos.classes." + name
		// The host's card records spell classes the same way (cardhost
		// card class): one rule for both.
		if hostapi.CheckClassName(name) != nil {
			p.bad(key, name, "must name the class (student, staff, 教工…): 1 to %d characters, lower case, no dots or surrounding spaces", hostapi.MaxClassName)
		}
		types := c.POS.Classes[name]
		if len(types) > maxClassTypes {
			// No types at all is a class the host's card records give
			// (cardhost card class), which no card type byte says.
			p.bad(key, strings.Join(types, ", "), "a class has at most %d card types in hex, like [\"02\"] (EF 0x15 byte 28) or [\"0201\"] (bytes 28-29), or none ([]) when only the host's card records give it", maxClassTypes)
		}
		for _, s := range types {
			ct, ok := ParseCardType(s)
			switch {
			case !ok:
				p.bad(key, s, "must be a card type in hex: 2 digits for the type byte (EF 0x15 byte 28), like \"02\", or 4 for bytes 28-29, like \"0201\"")
			case owner[ct] != "":
				p.bad(key, s, "is already a card type of pos.classes.%s: a card has one class", owner[ct])
			default:
				owner[ct] = name
			}
		}
	}
}

// validateClassPrices checks one period's class_prices: a fixed period's,
// classes of pos.classes, amounts like price.
func (per PeriodConfig) validateClassPrices(p *problems, key func(string) string, classes map[string][]string, yuan func(k, s string)) {
	if len(per.ClassPrices) == 0 {
		return
	}
	if per.Mode != PeriodFixed {
		p.bad(key("class_prices"), display(per.ClassPrices), "only a fixed period has prices per class")
		return
	}
	for _, class := range slices.Sorted(maps.Keys(per.ClassPrices)) {
		k := "class_prices." + class
		if knownClass(p, key(k), per.ClassPrices[class], class, classes) {
			yuan(k, per.ClassPrices[class])
		}
	}
}

// knownClass refuses, under key with value, a class pos.classes does not
// define.
func knownClass(p *problems, key, value, class string, classes map[string][]string) bool {
	if _, ok := classes[class]; ok {
		return true
	}
	if known := slices.Sorted(maps.Keys(classes)); len(known) > 0 {
		p.bad(key, value, "names class %q, not one of pos.classes (%s)", class, strings.Join(known, ", "))
	} else {
		p.bad(key, value, "names class %q, but pos.classes defines none", class)
	}
	return false
}

// validateDiscounts checks one period's discounts: a keyed or menu
// period's, classes of pos.classes, each the percent of the price the
// class pays, 1 to 99.
func (per PeriodConfig) validateDiscounts(p *problems, key func(string) string, classes map[string][]string) {
	if len(per.Discounts) == 0 {
		return
	}
	if per.Mode == PeriodFixed {
		p.bad(key("discounts"), display(per.Discounts), "a fixed period has class_prices, not discounts")
		return
	}
	for _, class := range slices.Sorted(maps.Keys(per.Discounts)) {
		k, pct := key("discounts."+class), per.Discounts[class]
		if knownClass(p, k, strconv.Itoa(pct), class, classes) && (pct < 1 || pct > 99) {
			p.bad(k, strconv.Itoa(pct), "must be the percent of the price the class pays, 1 to 99 (80: 八折, 20%% off)")
		}
	}
}

// decodeMap stores a mapping with string keys into dst (pos.classes, a
// period's class_prices), each value decoded as the map's element; the
// environment gives it as YAML text.
func decodeMap(dst reflect.Value, raw any) *decodeError {
	raw, bad := yamlText(raw, "a YAML mapping, like {staff: [\"02\"]}")
	if bad != nil || raw == nil {
		return bad
	}
	if reflect.TypeOf(raw) == dst.Type() { // the default
		dst.Set(reflect.ValueOf(raw))
		return nil
	}
	m, bad := mapping(raw)
	if bad != nil {
		return bad
	}
	if len(m) == 0 {
		dst.Set(reflect.Zero(dst.Type()))
		return nil
	}
	out := reflect.MakeMapWithSize(dst.Type(), len(m))
	for k, v := range m {
		e := reflect.New(dst.Type().Elem()).Elem()
		if v != nil {
			if bad := decode(e, v); bad != nil {
				return badValue("%s %s", k, bad.reason)
			}
		}
		out.SetMapIndex(reflect.ValueOf(k), e)
	}
	dst.Set(out)
	return nil
}
