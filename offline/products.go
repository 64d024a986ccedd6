package offline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cardd/cardd/redact"
)

// Product is a card product (卡种) as the host's pull gives it: the most a
// card of it may hold after a load, and its last valid day.
type Product struct {
	Name   string
	CapFen int64
	// ValidUntil is the last day (YYYY-MM-DD, in this terminal's time
	// zone) a card of it loads or pays; "" for no end.
	ValidUntil string
}

// Expired reports whether p is past its last valid day at now, in now's
// time zone.
func (p Product) Expired(now time.Time) bool {
	return p.ValidUntil != "" && now.Format(time.DateOnly) > p.ValidUntil
}

// ProductChange sets the product of Card.
type ProductChange struct {
	Card    string
	Product string
}

// setProducts replaces the product list with list, when it is not nil,
// and applies the cards' product changes in order.
func (s *Store) setProducts(ctx context.Context, tx execer, list []Product, cards []ProductChange) error {
	now := s.now().UnixNano()
	if list != nil {
		if _, err := tx.ExecContext(ctx, `DELETE FROM products`); err != nil {
			return fmt.Errorf("products: %w", err)
		}
		for _, p := range list {
			if _, err := tx.ExecContext(ctx, `INSERT INTO products (name, cap_fen, valid_until, updated) VALUES (?, ?, ?, ?)`,
				p.Name, p.CapFen, p.ValidUntil, now); err != nil {
				return fmt.Errorf("product %q: %w", p.Name, err)
			}
		}
	}
	for _, c := range cards {
		if c.Card == "" {
			return errors.New("product change with an empty card number")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO card_products (card, product, updated) VALUES (?, ?, ?)
			ON CONFLICT (card) DO UPDATE SET product = excluded.product, updated = excluded.updated`, c.Card, c.Product, now); err != nil {
			return fmt.Errorf("product of card %s: %w", redact.CardNumber(c.Card), err)
		}
	}
	return nil
}

// CardProduct is the product the host gave card, with its cap and
// validity as last pulled; ok is false when this terminal knows of none
// (a card of another issuer, or not pulled yet): then only its own cap
// holds.
func (s *Store) CardProduct(ctx context.Context, card string) (p Product, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT p.name, p.cap_fen, p.valid_until FROM card_products c JOIN products p ON p.name = c.product
		WHERE c.card = ?`, card).Scan(&p.Name, &p.CapFen, &p.ValidUntil)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return p, false, nil
	case err != nil:
		return p, false, fmt.Errorf("offline: product of card %s: %w", redact.CardNumber(card), err)
	}
	return p, true, nil
}
