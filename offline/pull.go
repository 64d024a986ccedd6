package offline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cardd/cardd/redact"
)

// Credit is a pending credit pulled from the host: money paid for a card,
// waiting to be loaded onto it.
type Credit struct {
	ID        string // the host's id, unique there
	Card      string
	AmountFen int64
	Note      string    // "wechat", "subsidy", …
	Created   time.Time // at the host; orders a card's credits. Zero means now.
	// A subsidy (补助) is loaded onto Purse only, from NotBefore until
	// Expires; a credit of money paid leaves these zero.
	Kind      string // hostapi.CreditSubsidy, or ""
	Subsidy   string // the batch id
	Purse     string // "EP", "ED", or "" for the purse the tap reads
	NotBefore time.Time
	Expires   time.Time
}

// unixNano is t as the cache keeps a window's end: 0 for none.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano reads what unixNano wrote.
func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// DenyChange puts a card on the deny list or lifts it.
type DenyChange struct {
	Card   string
	Denied bool
	Reason string // "lost", "stolen", …
}

// ClassChange sets the identity class (身份) the host's card record gives a
// card, or clears it (Class "").
type ClassChange struct {
	Card  string
	Class string
}

// CloseChange says the host asked to close card: ID is its close's id
// (hostapi.CloseID), which the closing debit's row carries in CreditID.
type CloseChange struct {
	Card string
	ID   string
}

// PullCursor is the name of the cursor ApplyPull advances.
const PullCursor = "pull"

// execer is what both *sql.DB and *sql.Tx offer, so one helper serves a
// single change and a change inside ApplyPull's transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *Store) putCredit(ctx context.Context, tx execer, c Credit) error {
	switch {
	case c.ID == "":
		return errors.New("credit with an empty id")
	case c.Card == "":
		return fmt.Errorf("credit %s: empty card number", c.ID)
	case c.AmountFen <= 0:
		return fmt.Errorf("credit %s: amount %d fen: must be positive", c.ID, c.AmountFen)
	}
	created := c.Created
	if created.IsZero() {
		created = s.now()
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO credits (id, card, amount_fen, note, created, kind, subsidy, purse, not_before, expires)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET card = excluded.card, amount_fen = excluded.amount_fen,
		note = excluded.note, created = excluded.created, kind = excluded.kind, subsidy = excluded.subsidy,
		purse = excluded.purse, not_before = excluded.not_before, expires = excluded.expires`,
		c.ID, c.Card, c.AmountFen, c.Note, created.UnixNano(), c.Kind, c.Subsidy, c.Purse, unixNano(c.NotBefore), unixNano(c.Expires))
	if err != nil {
		return fmt.Errorf("credit %s: %w", c.ID, err)
	}
	return nil
}

func dropCredit(ctx context.Context, tx execer, id string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM credits WHERE id = ?`, id); err != nil {
		return fmt.Errorf("drop credit %s: %w", id, err)
	}
	return nil
}

func (s *Store) setDenied(ctx context.Context, tx execer, d DenyChange) error {
	if d.Card == "" {
		return errors.New("deny-list change with an empty card number")
	}
	var err error
	if d.Denied {
		_, err = tx.ExecContext(ctx, `INSERT INTO deny (card, reason, updated) VALUES (?, ?, ?)
			ON CONFLICT (card) DO UPDATE SET reason = excluded.reason, updated = excluded.updated`,
			d.Card, d.Reason, s.now().UnixNano())
	} else {
		_, err = tx.ExecContext(ctx, `DELETE FROM deny WHERE card = ?`, d.Card)
	}
	if err != nil {
		return fmt.Errorf("deny list, card %s: %w", redact.CardNumber(d.Card), err)
	}
	return nil
}

func (s *Store) setClass(ctx context.Context, tx execer, c ClassChange) error {
	if c.Card == "" {
		return errors.New("class change with an empty card number")
	}
	var err error
	if c.Class != "" {
		_, err = tx.ExecContext(ctx, `INSERT INTO card_classes (card, class, updated) VALUES (?, ?, ?)
			ON CONFLICT (card) DO UPDATE SET class = excluded.class, updated = excluded.updated`,
			c.Card, c.Class, s.now().UnixNano())
	} else {
		_, err = tx.ExecContext(ctx, `DELETE FROM card_classes WHERE card = ?`, c.Card)
	}
	if err != nil {
		return fmt.Errorf("class of card %s: %w", redact.CardNumber(c.Card), err)
	}
	return nil
}

// CardClass is the identity class the host's card record gives card, ""
// when the host gave it none (or this terminal has not pulled it yet).
func (s *Store) CardClass(ctx context.Context, card string) (string, error) {
	var class string
	err := s.db.QueryRowContext(ctx, `SELECT class FROM card_classes WHERE card = ?`, card).Scan(&class)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("offline: class of card %s: %w", redact.CardNumber(card), err)
	}
	return class, nil
}

func (s *Store) setCursor(ctx context.Context, tx execer, name, value string) error {
	if name == "" {
		return errors.New("cursor with an empty name")
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO cursors (name, value, updated) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated = excluded.updated`,
		name, value, s.now().UnixNano())
	if err != nil {
		return fmt.Errorf("cursor %s: %w", name, err)
	}
	return nil
}

// PutCredits inserts the credits, or updates those whose id is known, in
// one transaction: all or none.
func (s *Store) PutCredits(ctx context.Context, credits []Credit) error {
	return s.write(ctx, fmt.Sprintf("put %d credits", len(credits)), func(tx *sql.Tx) error {
		for _, c := range credits {
			if err := s.putCredit(ctx, tx, c); err != nil {
				return err
			}
		}
		return nil
	})
}

// DropCredits removes the credits with these ids from the cache (consumed or
// cancelled at the host). Unknown ids are ignored.
func (s *Store) DropCredits(ctx context.Context, ids []string) error {
	return s.write(ctx, fmt.Sprintf("drop %d credits", len(ids)), func(tx *sql.Tx) error {
		for _, id := range ids {
			if err := dropCredit(ctx, tx, id); err != nil {
				return err
			}
		}
		return nil
	})
}

// CreditsFor returns the cached credits of card that may be loaded now,
// oldest first. A credit with a load row in intent, unknown or done is left
// out even while the cache still holds it: done means it is on the card
// (the host learns so from the completion and drops it at a later pull), and
// intent or unknown means the card must first tell whether it is (money
// rule 3). The host would refuse a second load anyway (rule 4); this keeps
// the terminal from even asking.
func (s *Store) CreditsFor(ctx context.Context, card string) ([]Credit, error) {
	if card == "" {
		return nil, errors.New("offline: credits: empty card number")
	}
	rows, err := s.db.QueryContext(ctx, `SELECT c.id, c.card, c.amount_fen, c.note, c.created, c.kind, c.subsidy, c.purse, c.not_before, c.expires FROM credits c
		WHERE c.card = ? AND NOT EXISTS (SELECT 1 FROM journal j WHERE j.kind = 'load' AND j.credit_id = c.id
			AND j.state IN ('intent', 'unknown', 'done'))
		ORDER BY c.created, c.id`, card)
	if err != nil {
		return nil, fmt.Errorf("offline: credits of card %s: %w", redact.CardNumber(card), err)
	}
	defer rows.Close()
	var out []Credit
	for rows.Next() {
		var c Credit
		var created, notBefore, expires int64
		if err := rows.Scan(&c.ID, &c.Card, &c.AmountFen, &c.Note, &created, &c.Kind, &c.Subsidy, &c.Purse, &notBefore, &expires); err != nil {
			return nil, fmt.Errorf("offline: credits of card %s: %w", redact.CardNumber(card), err)
		}
		c.Created, c.NotBefore, c.Expires = time.Unix(0, created), fromUnixNano(notBefore), fromUnixNano(expires)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("offline: credits of card %s: %w", redact.CardNumber(card), err)
	}
	return out, nil
}

// SetDenied puts card on the deny list with reason, or lifts it.
func (s *Store) SetDenied(ctx context.Context, card string, denied bool, reason string) error {
	return s.write(ctx, "set deny list", func(tx *sql.Tx) error {
		return s.setDenied(ctx, tx, DenyChange{Card: card, Denied: denied, Reason: reason})
	})
}

// Denied reports whether card is on the deny list, and why.
func (s *Store) Denied(ctx context.Context, card string) (bool, string, error) {
	var reason string
	err := s.db.QueryRowContext(ctx, `SELECT reason FROM deny WHERE card = ?`, card).Scan(&reason)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, "", nil
	case err != nil:
		return false, "", fmt.Errorf("offline: deny list, card %s: %w", redact.CardNumber(card), err)
	}
	return true, reason, nil
}

// Cursor returns the named cursor's value, "" when it was never set (which
// for the pull cursor means "from the start").
func (s *Store) Cursor(ctx context.Context, name string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM cursors WHERE name = ?`, name).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("offline: cursor %s: %w", name, err)
	}
	return v, nil
}

// CursorUpdated returns when the named cursor was last set, zero when
// never: for the pull cursor, the last pull that succeeded, and so how old
// the cached credits may be.
func (s *Store) CursorUpdated(ctx context.Context, name string) (time.Time, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT updated FROM cursors WHERE name = ?`, name).Scan(&n)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("offline: cursor %s: %w", name, err)
	}
	return time.Unix(0, n), nil
}

// SetCursor sets the named cursor.
func (s *Store) SetCursor(ctx context.Context, name, value string) error {
	return s.write(ctx, "set cursor "+name, func(tx *sql.Tx) error {
		return s.setCursor(ctx, tx, name, value)
	})
}

// ApplyPull is ApplyPage of a page without class changes.
func (s *Store) ApplyPull(ctx context.Context, put []Credit, drop []string, deny []DenyChange, cursor string) error {
	return s.ApplyPage(ctx, PullPage{Put: put, Drop: drop, Deny: deny, Cursor: cursor})
}

// PullPage is one pull answer as the cache takes it.
type PullPage struct {
	Put     []Credit      // credits upserted
	Drop    []string      // credits dropped
	Deny    []DenyChange  // deny-list changes, in order
	Classes []ClassChange // class changes, in order
	// CardProducts are cards' product changes, in order; Products, when
	// not nil, is the host's whole product list, which replaces this
	// terminal's.
	CardProducts []ProductChange
	Products     []Product
	Closes       []CloseChange // cards the host asked to close
	Cursor       string        // the PullCursor after the page
}

// ApplyPage applies one pull answer in one transaction: credits upserted,
// credits dropped, deny-list and class changes in order, and the
// PullCursor set to the page's. Either all of it lands or none, so a
// crash never leaves the cursor ahead of the data (which would skip
// changes for good).
func (s *Store) ApplyPage(ctx context.Context, pg PullPage) error {
	put, drop, deny, cursor := pg.Put, pg.Drop, pg.Deny, pg.Cursor
	what := fmt.Sprintf("apply pull (%d credits, %d dropped, %d deny changes, %d class changes, %d closes)", len(put), len(drop), len(deny), len(pg.Classes), len(pg.Closes))
	return s.write(ctx, what, func(tx *sql.Tx) error {
		for _, c := range put {
			if err := s.putCredit(ctx, tx, c); err != nil {
				return err
			}
		}
		for _, id := range drop {
			if err := dropCredit(ctx, tx, id); err != nil {
				return err
			}
		}
		for _, d := range deny {
			if err := s.setDenied(ctx, tx, d); err != nil {
				return err
			}
		}
		for _, c := range pg.Classes {
			if err := s.setClass(ctx, tx, c); err != nil {
				return err
			}
		}
		if err := s.setProducts(ctx, tx, pg.Products, pg.CardProducts); err != nil {
			return err
		}
		for _, c := range pg.Closes {
			if err := s.setClose(ctx, tx, c); err != nil {
				return err
			}
		}
		return s.setCursor(ctx, tx, PullCursor, cursor)
	})
}

// NextSerial returns the next e-purse terminal transaction serial (4
// bytes), committed durably before it is returned, so no serial is ever
// handed out twice, even across a crash. It starts at 1 and, after
// 0xFFFFFFFF, wraps to 1 as terminal serials do (0 is never used).
func (s *Store) NextSerial(ctx context.Context) (uint32, error) {
	var v int64
	err := s.write(ctx, "next terminal serial", func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO counters (name, value) VALUES ('serial', 1)
			ON CONFLICT (name) DO UPDATE SET value = CASE WHEN value >= 4294967295 THEN 1 ELSE value + 1 END
			RETURNING value`).Scan(&v)
	})
	if err != nil {
		return 0, err
	}
	return uint32(v), nil
}
