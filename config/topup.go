package config

import (
	"strconv"
	"time"
)

// TopupConfig is the top-up paid by phone at the kiosk: the page offers it
// for the card on the reader, the host makes the payment order, and the
// money is written onto the card while it is still there.
type TopupConfig struct {
	// Enabled offers the top-up on the kiosk page; it needs mode kiosk and
	// host.url.
	Enabled bool `mapstructure:"enabled"`
	// Presets are the amounts offered as buttons, in fen (2000 is 20.00).
	Presets []int `mapstructure:"presets"`
	// MaxFen is the most the keypad takes, in fen; the card's room under
	// load.balance_cap lowers it further for each card.
	MaxFen int `mapstructure:"max_fen"`
	// Wait is how long the payment screen waits for the payment; then the
	// order is closed at the host (nothing is charged after that).
	Wait time.Duration `mapstructure:"wait"`
	// Poll is how often, at most, the daemon asks the host about an unpaid
	// order while the page waits: the host's load per kiosk stays bounded
	// however often the page asks.
	Poll time.Duration `mapstructure:"poll"`
}

// Bounds of the top-up's keys.
const (
	MaxTopupPresets = 8
	MinTopupWait    = 30 * time.Second
	MaxTopupWait    = 30 * time.Minute
	MinTopupPoll    = 500 * time.Millisecond
	MaxTopupPoll    = 30 * time.Second
)

// defaultTopup is the built-in kiosk.topup: off, with 20, 50, 100 and 200
// yuan offered and at most 500 yuan on the keypad.
func defaultTopup() TopupConfig {
	return TopupConfig{Presets: []int{2000, 5000, 10000, 20000}, MaxFen: 50000, Wait: 3 * time.Minute, Poll: 2 * time.Second}
}

// PresetsFen is Presets as int64 fen.
func (t TopupConfig) PresetsFen() []int64 {
	out := make([]int64, len(t.Presets))
	for i, p := range t.Presets {
		out[i] = int64(p)
	}
	return out
}

func (c *Config) validateTopup(p *problems) {
	t := c.Kiosk.Topup
	if t.Enabled && c.Mode != ModeKiosk {
		p.bad("kiosk.topup.enabled", "true", "the top-up is the kiosk's: mode is %q, not kiosk", c.Mode)
	}
	if t.Enabled && c.Host.URL == "" {
		p.bad("kiosk.topup.enabled", "true", "needs host.url: the host makes the payment order and holds the credit")
	}
	if t.MaxFen <= 0 || int64(t.MaxFen) > 0xFFFFFFFF {
		p.bad("kiosk.topup.max_fen", strconv.Itoa(t.MaxFen), "must be fen above 0 and at most 4294967295, like 50000 (500.00 yuan)")
	}
	if len(t.Presets) > MaxTopupPresets {
		p.bad("kiosk.topup.presets", strconv.Itoa(len(t.Presets))+" entries", "at most %d amounts fit the screen", MaxTopupPresets)
	}
	seen := map[int]bool{}
	for i, f := range t.Presets {
		switch {
		case f <= 0 || f > t.MaxFen:
			p.bad("kiosk.topup.presets", strconv.Itoa(f), "entry %d must be fen above 0 and at most kiosk.topup.max_fen (%d), like 5000 (50.00 yuan)", i+1, t.MaxFen)
		case seen[f]:
			p.bad("kiosk.topup.presets", strconv.Itoa(f), "entry %d repeats an earlier amount", i+1)
		}
		seen[f] = true
	}
	if t.Wait < MinTopupWait || t.Wait > MaxTopupWait {
		p.bad("kiosk.topup.wait", t.Wait.String(), "must be from %v to %v (how long the payment screen waits for the payment)", MinTopupWait, MaxTopupWait)
	}
	if t.Poll < MinTopupPoll || t.Poll > MaxTopupPoll {
		p.bad("kiosk.topup.poll", t.Poll.String(), "must be from %v to %v (how often the host is asked about an unpaid order)", MinTopupPoll, MaxTopupPoll)
	}
}
