package daemon

import (
	"log/slog"
	"time"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/tap"
)

// mealsOf is pos.periods for the till: nil when none are configured, so a
// terminal without periods sells keyed at any time as it always did.
func mealsOf(cfg *config.Config, log *slog.Logger) *tap.Meals {
	if len(cfg.POS.Periods) == 0 {
		return nil
	}
	m := &tap.Meals{Classes: classesOf(cfg, log)}
	for _, p := range cfg.POS.Periods {
		per := tap.Period{Name: p.Name, Start: time.Duration(p.StartMinute()) * time.Minute, End: time.Duration(p.EndMinute()) * time.Minute,
			Mode: tap.PeriodMode(p.Mode), MaxCount: p.MaxCount, MaxAmount: p.MaxAmountFen(), Discounts: p.Discounts}
		switch p.Mode {
		case config.PeriodFixed:
			per.Price, per.ClassPrices = p.PriceFen(), p.ClassPricesFen()
		case config.PeriodMenu:
			per.Prices = p.PricesFen()
		}
		m.Periods = append(m.Periods, per)
		log.Info("meal period", "period", per.Name, "window", per.Window(), "mode", p.Mode, "price", p.Price, "prices", p.Prices,
			"class_prices", p.ClassPrices, "discounts", p.Discounts,
			"max_count", p.MaxCount, "max_amount", p.MaxAmount)
	}
	return m
}

// classesOf is pos.classes for the meal periods' class prices and
// discounts; a class with no card type is given by the host's card
// records only.
func classesOf(cfg *config.Config, log *slog.Logger) tap.Classes {
	c := tap.Classes{Names: map[string]bool{}, Types: map[uint16]string{}, TypeBytes: map[byte]string{}}
	types := cfg.POS.ClassTypes() // a class with none is not in it
	for name := range cfg.POS.Classes {
		c.Names[name] = true
		for _, ct := range types[name] {
			if ct.Whole {
				c.Types[ct.Value] = name
			} else {
				c.TypeBytes[byte(ct.Value>>8)] = name
			}
		}
		log.Info("identity class", "class", name, "card_types", cfg.POS.Classes[name])
	}
	return c
}
