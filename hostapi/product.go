package hostapi

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Built-in card products (卡种), seeded by the host's schema: a named card
// (记名卡) and an anonymous one (不记名卡).
const (
	ProductNamed     = "named"
	ProductAnonymous = "anonymous"
)

// CodeProductExpired (409): the card's product is past its last valid
// day: no load (and no purchase at a terminal that knows it).
const CodeProductExpired = "product_expired"

// DateLayout is how a product's last valid day is written.
const DateLayout = time.DateOnly

// Product is a card product as terminals pull it: what a card of it may
// hold and until when it is valid.
type Product struct {
	Name   string `json:"name"`
	CapFen int64  `json:"cap_fen"` // the most a card of it may hold after a load
	// ValidUntil is the last day (DateLayout, inclusive, in the local
	// time zone of whoever checks it) a card of the product loads or
	// pays; "" for no end.
	ValidUntil  string `json:"valid_until,omitempty"`
	Replaceable bool   `json:"replaceable"`
	Refundable  bool   `json:"refundable"`
}

// Expired reports whether the product is past its last valid day at now,
// in now's time zone.
func (p Product) Expired(now time.Time) bool {
	return p.ValidUntil != "" && now.Format(DateLayout) > p.ValidUntil
}

// ProductChange sets the product of a card (Card) as the host's card
// record gives it.
type ProductChange struct {
	Card    string `json:"card"`
	Product string `json:"product"`
}

// CheckProductName accepts a product name: the rules of an identity class
// name (CheckClassName), so that both read alike in lists and configs.
func CheckProductName(name string) error {
	if err := CheckClassName(name); err != nil {
		// The same rules, told of a product.
		return errors.New(strings.Replace(err.Error(), "a class name", "a product name", 1))
	}
	return nil
}

// CheckValidUntil accepts a product's last valid day: "" or a date in
// DateLayout.
func CheckValidUntil(s string) error {
	if s == "" {
		return nil
	}
	if _, err := time.Parse(DateLayout, s); err != nil {
		return fmt.Errorf("want a date YYYY-MM-DD")
	}
	return nil
}
