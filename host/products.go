package host

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
)

// EventProductSet is the ledger event of a card's product (卡种) set
// (detail: the product).
const EventProductSet = "product"

// ErrOverProductCap is wrapped when a card would be issued holding more
// than its product's cap.
var ErrOverProductCap = errors.New("over the product's cap")

// Product is a card product (卡种): named and anonymous cards, which the
// schema seeds, and the operators' own. A card has exactly one.
//
// CapFen is the most a card of it may hold after a load (the host's own
// --balance-cap stays a ceiling over every product); Replaceable says
// whether a lost card of it may be replaced with its balance, Refundable
// whether its balance is refunded when it is closed; ValidUntil is its
// last valid day (hostapi.DateLayout, "" for no end), after which the
// host authorizes no load of it and terminals refuse its loads and sales.
type Product struct {
	hostapi.Product
	Updated string `json:"updated"` // RFC 3339; the epoch for a built-in never edited
	Actor   string `json:"actor"`   // who last set it
}

// ProductEdit is a change of a product: each non-nil field is set.
type ProductEdit struct {
	CapFen      *int64
	Replaceable *bool
	Refundable  *bool
	ValidUntil  *string // "" ends the validity limit
}

// checkProduct refuses a product a card could not be held to.
func checkProduct(p hostapi.Product) error {
	if err := hostapi.CheckProductName(p.Name); err != nil {
		return err
	}
	if p.CapFen <= 0 || p.CapFen > 0xFFFFFFFF {
		return fmt.Errorf("product %s: cap %s: want above 0.00 and at most %s (the card's balance field)", p.Name, money.Format(p.CapFen), money.Format(0xFFFFFFFF))
	}
	if err := hostapi.CheckValidUntil(p.ValidUntil); err != nil {
		return fmt.Errorf("product %s: valid until %q: %w", p.Name, p.ValidUntil, err)
	}
	return nil
}

const productColumns = `p.name, p.cap_fen, p.replaceable, p.refundable, p.valid_until, p.updated, p.actor`

func scanProduct(sc interface{ Scan(...any) error }) (Product, error) {
	var p Product
	err := sc.Scan(&p.Name, &p.CapFen, &p.Replaceable, &p.Refundable, &p.ValidUntil, &p.Updated, &p.Actor)
	p.Updated = rfc3339(p.Updated)
	return p, err
}

// product reads a product; ErrNotFound when there is none of that name.
func product(q querier, name string) (Product, error) {
	p, err := scanProduct(q.QueryRow(`SELECT `+productColumns+` FROM products p WHERE p.name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("product %q: %w", name, ErrNotFound)
	}
	return p, err
}

// products reads every product, by name.
func products(q querier) ([]Product, error) {
	rows, err := q.Query(`SELECT ` + productColumns + ` FROM products p ORDER BY p.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Product
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// cardProduct reads the product of a card the host issued; ErrNotFound
// when it issued none of that number.
func cardProduct(q querier, number string) (Product, error) {
	p, err := scanProduct(q.QueryRow(`SELECT `+productColumns+` FROM cards c JOIN products p ON p.name = c.product WHERE c.number = ?`, number))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("card %s: %w", redact.CardNumber(number), ErrNotFound)
	}
	return p, err
}

// Products lists the products, by name.
func (s *Store) Products(ctx context.Context) ([]Product, error) { return products(s.db) }

// Product returns a product; an error wrapping ErrNotFound when there is
// none of that name.
func (s *Store) Product(ctx context.Context, name string) (Product, error) {
	return product(s.db, name)
}

// CardProduct returns the product of a card the host issued: what it may
// hold (CapFen), whether it can be replaced (Replaceable) or refunded on
// closing (Refundable), and its last valid day (ValidUntil, Expired). An
// error wraps ErrNotFound for a card the host never issued.
func (s *Store) CardProduct(ctx context.Context, number string) (Product, error) {
	return cardProduct(s.db, number)
}

// AddProduct creates an operator's product; ErrExists when the name is
// taken.
func (s *Store) AddProduct(ctx context.Context, p hostapi.Product, actor string, now time.Time) error {
	if err := checkProduct(p); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := product(tx, p.Name); err == nil {
			return fmt.Errorf("product %s: %w", p.Name, ErrExists)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO products (name, cap_fen, replaceable, refundable, valid_until, updated, actor) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			p.Name, p.CapFen, flag(p.Replaceable), flag(p.Refundable), p.ValidUntil, dbTime(now), actor); err != nil {
			if uniqueViolation(err) {
				return fmt.Errorf("product %s: %w", p.Name, ErrExists)
			}
			return err
		}
		return productEdited(tx, p.Name, now)
	})
}

// SetProduct applies an edit to a product and returns it as it is now;
// ErrNotFound when there is none of that name. Terminals learn the edit at
// their next pull.
func (s *Store) SetProduct(ctx context.Context, name string, e ProductEdit, actor string, now time.Time) (Product, error) {
	var p Product
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if p, err = product(tx, name); err != nil {
			return err
		}
		if e.CapFen != nil {
			p.CapFen = *e.CapFen
		}
		if e.Replaceable != nil {
			p.Replaceable = *e.Replaceable
		}
		if e.Refundable != nil {
			p.Refundable = *e.Refundable
		}
		if e.ValidUntil != nil {
			p.ValidUntil = *e.ValidUntil
		}
		if err := checkProduct(p.Product); err != nil {
			return err
		}
		p.Updated, p.Actor = now.UTC().Format(time.RFC3339), actor
		if _, err := tx.Exec(`UPDATE products SET cap_fen = ?, replaceable = ?, refundable = ?, valid_until = ?, updated = ?, actor = ? WHERE name = ?`,
			p.CapFen, flag(p.Replaceable), flag(p.Refundable), p.ValidUntil, dbTime(now), actor, name); err != nil {
			return err
		}
		return productEdited(tx, name, now)
	})
	return p, err
}

// flag is a yes or no as the products table keeps it: 0 or 1 on both
// stores.
func flag(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// productEdited puts a product's edit on the change feed, with no card:
// a terminal waiting on the feed wakes, and the pull's product list
// carries the product as it is now.
func productEdited(tx *sql.Tx, name string, now time.Time) error {
	_, err := tx.Exec(`INSERT INTO changes (kind, card, product, time) VALUES ('product', '', ?, ?)`, name, dbTime(now))
	return err
}

// SetCardProduct sets the product of a card the host issued. It reports
// whether anything changed; a change reaches the terminals through
// /v1/pull. A card the host never issued, or a product it does not have,
// is ErrNotFound.
func (s *Store) SetCardProduct(ctx context.Context, number, name, actor string, now time.Time) (changed bool, err error) {
	if err := hostapi.CheckCardID(number); err != nil {
		return false, err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		changed = false // a retry starts over
		old, err := cardProduct(tx, number)
		if err != nil {
			return err
		}
		if _, err := product(tx, name); err != nil {
			return err
		}
		if old.Name == name {
			return nil
		}
		if _, err := tx.Exec(`UPDATE cards SET product = ? WHERE number = ?`, name, number); err != nil {
			return err
		}
		changed = true
		return addProductChange(tx, number, name, actor, now)
	})
	return changed, err
}

// addProductChange puts a card's new product on the change feed and the
// ledger.
func addProductChange(tx *sql.Tx, number, name, actor string, now time.Time) error {
	if _, err := tx.Exec(`INSERT INTO changes (kind, card, product, time) VALUES ('product', ?, ?, ?)`, number, name, dbTime(now)); err != nil {
		return err
	}
	return addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventProductSet, Card: number, Detail: name})
}

// defaultProduct is the product of a card issued without one: named when
// it has a holder, else anonymous.
func defaultProduct(holder string) string {
	if holder != "" {
		return hostapi.ProductNamed
	}
	return hostapi.ProductAnonymous
}

// checkProductLoad refuses a load that would take a card holding heldFen
// past the smaller of hostCap (0: none) and its product's cap (409
// over_balance_cap, naming the product when its cap is the one passed),
// or of a card whose product is past its last valid day at now (409
// product_expired). A card without a record (a wallet of another issuer)
// has only the host's cap.
func checkProductLoad(q querier, number string, heldFen, amountFen, hostCap int64, now time.Time) error {
	p, err := cardProduct(q, number)
	known := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if known && p.Expired(now) {
		return conflict(hostapi.CodeProductExpired, "%s card: its product was valid until %s; no load", p.Name, p.ValidUntil)
	}
	after := heldFen + amountFen
	switch {
	case known && after > p.CapFen && (hostCap <= 0 || p.CapFen <= hostCap):
		return conflict(hostapi.CodeBalanceCap, "%s card: balance %s + %s = %s would exceed its cap of %s", p.Name,
			money.Format(heldFen), money.Format(amountFen), money.Format(after), money.Format(p.CapFen))
	case hostCap > 0 && after > hostCap:
		return conflict(hostapi.CodeBalanceCap, "balance %s + %s = %s would exceed the cap of %s", money.Format(heldFen),
			money.Format(amountFen), money.Format(after), money.Format(hostCap))
	}
	return nil
}
