package host

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
)

// CheckCardNumber accepts a card number: the card ids of
// hostapi.CheckCardID but a UID's. It is hostapi.CheckCardNumber, kept here
// for the host's callers.
func CheckCardNumber(n string) error { return hostapi.CheckCardNumber(n) }

// Card is a card the host issued.
type Card struct {
	Number            string `json:"number"`
	AppSerial         string `json:"app_serial"` // hex
	Holder            string `json:"holder"`
	Issued            string `json:"issued"` // RFC 3339
	InitialBalanceFen int64  `json:"initial_balance_fen"`
	StartDate         string `json:"start_date"`
	ExpiryDate        string `json:"expiry_date"`
	// Kind is CardEPurse or CardM1.
	Kind string `json:"kind"`
	// Class is the card's identity class (身份), "" for none: terminals
	// pull it, and it wins over the class of the card's type byte.
	Class string `json:"class,omitempty"`
}

// Card kinds.
const (
	CardEPurse = "epurse" // a CPU card with the e-purse application, known by its number
	CardM1     = "m1"     // a MIFARE Classic wallet, known by its UID
)

// serial decodes the application serial the keys are diversified from.
func (c Card) serial() ([10]byte, error) {
	var s [10]byte
	b, err := hex.DecodeString(c.AppSerial)
	if err != nil || len(b) != len(s) {
		return s, fmt.Errorf("card %s: stored app_serial is not 10 bytes of hex", redact.CardNumber(c.Number))
	}
	copy(s[:], b)
	return s, nil
}

// querier is what *sql.DB and *sql.Tx share, so a lookup serves both a
// plain read and a rule inside its transaction.
type querier interface {
	QueryRow(query string, args ...any) *sql.Row
	Query(query string, args ...any) (*sql.Rows, error)
}

// card reads a card; ErrNotFound when the host never issued it.
func card(q querier, number string) (Card, error) {
	var c Card
	err := q.QueryRow(`SELECT number, app_serial, holder, issued, initial_balance_fen, start_date, expiry_date, kind, class
		FROM cards WHERE number = ?`, number).
		Scan(&c.Number, &c.AppSerial, &c.Holder, &c.Issued, &c.InitialBalanceFen, &c.StartDate, &c.ExpiryDate, &c.Kind, &c.Class)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("card %s: %w", redact.CardNumber(number), ErrNotFound)
	}
	c.Issued = rfc3339(c.Issued)
	return c, err
}

// Card returns a card the host issued; an error wrapping ErrNotFound when
// there is none.
func (s *Store) Card(ctx context.Context, number string) (Card, error) {
	return card(s.db, number)
}

// IssueRequest describes a new card.
type IssueRequest struct {
	Number string // hostapi.CheckCardNumber
	// Profile is the card's numbering and layout, one of
	// epursesim.IssuableProfiles; nil means epurse.ProfileCampus.
	Profile    *epurse.Profile
	Holder     string // "" for an anonymous card
	BalanceFen int64  // EP balance at issue
	Start      epurse.Date
	Expiry     epurse.Date
	// Class is the card's identity class, "" for none
	// (hostapi.CheckClassName).
	Class string
	// Product is the card's product (卡种), one the host has; "" for
	// named when the card has a holder, else anonymous.
	Product string
}

// IssueCard creates a card: its file (keys diversified from the masters,
// mode 0600, for the simulator or a card personalization step) at out, and
// its registration here. A number already issued, or an existing out file,
// is refused (ErrExists): a second card with the same number would share
// its keys and its credits.
func (s *Store) IssueCard(ctx context.Context, keys *Keys, req IssueRequest, out, actor string, now time.Time) (*epursesim.CardFile, error) {
	if err := CheckCardNumber(req.Number); err != nil {
		return nil, err
	}
	if req.Class != "" {
		if err := hostapi.CheckClassName(req.Class); err != nil {
			return nil, fmt.Errorf("class %q: %w", req.Class, err)
		}
	}
	prof := req.Profile
	if prof == nil {
		prof = epurse.ProfileCampus
	}
	f, err := keys.NewCardFile(prof, req.Number, req.Holder, req.BalanceFen, req.Start, req.Expiry)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(out); err == nil {
		return nil, fmt.Errorf("card file %s: %w", out, ErrExists)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM cards WHERE number = ?`, req.Number).Scan(&n); err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, fmt.Errorf("card %s: %w", req.Number, ErrExists)
	}
	prod := req.Product
	if prod == "" {
		prod = defaultProduct(req.Holder)
	}
	if p, err := product(tx, prod); err != nil {
		return nil, err
	} else if req.BalanceFen > p.CapFen {
		return nil, fmt.Errorf("%w: an initial balance of %s is over the %s product's cap of %s", ErrOverProductCap, money.Format(req.BalanceFen), prod, money.Format(p.CapFen))
	}
	if _, err := tx.Exec(`INSERT INTO cards (number, app_serial, holder, issued, initial_balance_fen, start_date, expiry_date, class, product)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, req.Number, fmt.Sprintf("%X", f.Info.AppSerial[:]), req.Holder, dbTime(now),
		req.BalanceFen, f.Info.StartDate.String(), f.Info.ExpiryDate.String(), req.Class, prod); err != nil {
		if uniqueViolation(err) {
			// Another host process issued it since the count above: on
			// PostgreSQL this transaction reads at READ COMMITTED and the
			// primary key is what decides.
			return nil, fmt.Errorf("card %s: %w", req.Number, ErrExists)
		}
		return nil, err
	}
	if err := addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventIssued, Card: req.Number, AmountFen: &req.BalanceFen}); err != nil {
		return nil, err
	}
	if req.Class != "" {
		if err := addClassChange(tx, req.Number, req.Class, actor, now); err != nil {
			return nil, err
		}
	}
	// The file is written inside the transaction: if it cannot be, the card
	// is not registered; if the commit fails, the file goes.
	if err := f.Save(out); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		os.Remove(out)
		return nil, err
	}
	return f, nil
}

// denyState reports whether a card is on the deny list, and why.
func denyState(q querier, number string) (denied bool, reason string, err error) {
	err = q.QueryRow(`SELECT reason FROM deny WHERE card = ?`, number).Scan(&reason)
	if errors.Is(err, sql.ErrNoRows) {
		return false, "", nil
	}
	return err == nil, reason, err
}

// Deny puts a card on the deny list, or changes the reason it is there. Any
// card id (hostapi.CheckCardID: a number of 8 to 20 digits or a UID) may be denied,
// issued here or not: terminals also meet cards of other issuers, and a
// door knows most cards by their UID alone. It reports whether anything changed; a change
// reaches the terminals through /v1/pull.
func (s *Store) Deny(ctx context.Context, number, reason, actor string, now time.Time) (changed bool, err error) {
	if err := hostapi.CheckCardID(number); err != nil {
		return false, err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		changed, err = deny(tx, number, reason, actor, now)
		return err
	})
	return changed, err
}

// deny is Deny inside the caller's transaction.
func deny(tx *sql.Tx, number, reason, actor string, now time.Time) (changed bool, err error) {
	denied, old, err := denyState(tx, number)
	if err != nil {
		return false, err
	}
	if denied && old == reason {
		return false, nil
	}
	if _, err := tx.Exec(`INSERT INTO deny (card, reason, since) VALUES (?, ?, ?)
		ON CONFLICT (card) DO UPDATE SET reason = excluded.reason`, number, reason, dbTime(now)); err != nil {
		return false, err
	}
	if _, err := tx.Exec(`INSERT INTO changes (kind, card, denied, reason, time) VALUES ('deny', ?, 1, ?, ?)`, number, reason, dbTime(now)); err != nil {
		return false, err
	}
	return true, addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventDenied, Card: number, Detail: reason})
}

// Undeny lifts a card from the deny list; ErrNotFound when it is not on it.
func (s *Store) Undeny(ctx context.Context, number, actor string, now time.Time) error {
	if err := hostapi.CheckCardID(number); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		// A replaced card found again stays blocked: its balance went to
		// its replacement, and taps of it would spend the money twice.
		if r, found, err := replacementOf(tx, number); err != nil {
			return err
		} else if found && r.Old == number {
			return fmt.Errorf("card %s was replaced by card %s: it stays on the deny list: %w", number, r.New, ErrReplacedCard)
		}
		// So does a closed one: its balance is owed back as a refund, and
		// a POS that pulled its close would debit it again.
		if c, found, err := closeOf(tx, number); err != nil {
			return err
		} else if found && c.State == CloseClosed {
			return fmt.Errorf("card %s was closed at %s (refund due): it stays on the deny list: %w", number, c.Closed, ErrClosedCard)
		}
		res, err := tx.Exec(`DELETE FROM deny WHERE card = ?`, number)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("card %s is not on the deny list: %w", number, ErrNotFound)
		}
		if _, err := tx.Exec(`INSERT INTO changes (kind, card, denied, reason, time) VALUES ('deny', ?, 0, '', ?)`, number, dbTime(now)); err != nil {
			return err
		}
		return addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventUndenied, Card: number})
	})
}

// SetClass sets the identity class (身份) of a card the host issued (an
// e-purse card or an M1 wallet), or clears it with class "": terminals
// then go by the card's type byte again. It reports whether anything
// changed; a change reaches the terminals through /v1/pull. A card the
// host never issued is ErrNotFound: the class belongs to the card record.
func (s *Store) SetClass(ctx context.Context, number, class, actor string, now time.Time) (changed bool, err error) {
	if err := hostapi.CheckCardID(number); err != nil {
		return false, err
	}
	if class != "" {
		if err := hostapi.CheckClassName(class); err != nil {
			return false, fmt.Errorf("class %q: %w", class, err)
		}
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		changed = false // a retry starts over
		c, err := card(tx, number)
		if err != nil {
			return err
		}
		if c.Class == class {
			return nil
		}
		if _, err := tx.Exec(`UPDATE cards SET class = ? WHERE number = ?`, class, number); err != nil {
			return err
		}
		changed = true
		return addClassChange(tx, number, class, actor, now)
	})
	return changed, err
}

// addClassChange puts a card's new class on the change feed and the
// ledger.
func addClassChange(tx *sql.Tx, number, class, actor string, now time.Time) error {
	if _, err := tx.Exec(`INSERT INTO changes (kind, card, class, time) VALUES ('class', ?, ?, ?)`, number, class, dbTime(now)); err != nil {
		return err
	}
	return addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventClassSet, Card: number, Detail: class})
}
