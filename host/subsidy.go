package host

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
)

// EventWithdrawn is the ledger event of a subsidy's credit that was not
// picked up before its batch expired: cancelled by the host, never to load.
const EventWithdrawn = "withdrawn"

// Subsidy is a batch of subsidies (补助) as operators see it: one credit per
// card, each bound to the batch's purse and pick-up window, and what
// became of them.
type Subsidy struct {
	ID        string `json:"id"`
	AmountFen int64  `json:"amount_fen"` // per card
	Purse     string `json:"purse"`      // "EP" or "ED"
	NotBefore string `json:"not_before"` // RFC 3339
	Expires   string `json:"expires"`    // RFC 3339
	Note      string `json:"note,omitempty"`
	Created   string `json:"created"` // RFC 3339
	Actor     string `json:"actor"`
	Cards     int    `json:"cards"`
	Delivered int    `json:"delivered"` // on the card: a verified TAC
	Pending   int    `json:"pending"`
	Withdrawn int    `json:"withdrawn"` // cancelled: expired undelivered, or by an operator
}

// NewSubsidy is a batch an operator asks for.
type NewSubsidy struct {
	// ID names the batch; "" makes one. Adding a batch whose id exists
	// changes nothing, so an operator may run the same add again.
	ID        string
	AmountFen int64
	Purse     epurse.Purse
	NotBefore time.Time
	Expires   time.Time
	Note      string
	Cards     []string // card numbers; a card listed twice gets one credit
}

// maxSubsidyCards bounds one batch: a campus's students, in one transaction.
const maxSubsidyCards = 100000

var subsidyIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// check refuses a batch that could never be delivered as asked, naming
// the field; it truncates the window to whole seconds, as credits show it.
func (n *NewSubsidy) check(now time.Time) error {
	if n.ID != "" && !subsidyIDPattern.MatchString(n.ID) {
		return fmt.Errorf("subsidy id %q: want 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", n.ID)
	}
	if n.AmountFen <= 0 || n.AmountFen > epurse.MaxAmount {
		return fmt.Errorf("subsidy amount %s: want more than 0.00 and at most %s", money.Format(n.AmountFen), money.Format(epurse.MaxAmount))
	}
	if n.Purse != epurse.PurseEP && n.Purse != epurse.PurseED {
		return fmt.Errorf("subsidy purse %v: want EP or ED", n.Purse)
	}
	n.NotBefore, n.Expires = n.NotBefore.Truncate(time.Second), n.Expires.Truncate(time.Second)
	if !n.Expires.After(now) {
		return fmt.Errorf("subsidy expiry %s is past: no card could pick it up", n.Expires.Format(time.RFC3339))
	}
	if !n.Expires.After(n.NotBefore) {
		return fmt.Errorf("subsidy window %s to %s: the expiry must come after the start", n.NotBefore.Format(time.RFC3339), n.Expires.Format(time.RFC3339))
	}
	if utf8.RuneCountInString(n.Note) > maxNoteLen || !utf8.ValidString(n.Note) {
		return fmt.Errorf("subsidy note: want UTF-8 text of at most %d characters", maxNoteLen)
	}
	if len(n.Cards) == 0 {
		return errors.New("subsidy cards: want at least one card number")
	}
	if len(n.Cards) > maxSubsidyCards {
		return fmt.Errorf("subsidy cards: %d, want at most %d in one batch", len(n.Cards), maxSubsidyCards)
	}
	for _, c := range n.Cards {
		if err := CheckCardNumber(c); err != nil {
			return fmt.Errorf("subsidy card: %s", maskedCardError(err))
		}
	}
	return nil
}

// AddSubsidy creates a batch and one pending credit per card, in one
// transaction: all of them or none. Every card must have been issued here
// as an e-purse card (ErrNotFound names the first that was not). A batch
// whose id exists already is returned as it is, with added false, and
// nothing changes, whatever the rest of n says.
func (s *Store) AddSubsidy(ctx context.Context, n NewSubsidy, actor string, now time.Time) (b Subsidy, added bool, err error) {
	if err := n.check(now); err != nil {
		return b, false, err
	}
	if n.ID == "" {
		var r [8]byte
		if _, err := rand.Read(r[:]); err != nil {
			return b, false, fmt.Errorf("random subsidy id: %w", err)
		}
		n.ID = "sb-" + hex.EncodeToString(r[:])
	}
	cards := slices.Clone(n.Cards)
	slices.Sort(cards)
	cards = slices.Compact(cards)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		added = false // a retry starts over
		var one int
		switch err := tx.QueryRow(`SELECT 1 FROM subsidies WHERE id = ?`, n.ID).Scan(&one); {
		case err == nil:
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.Exec(`INSERT INTO subsidies (id, amount_fen, purse, not_before, expires, note, created, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			n.ID, n.AmountFen, n.Purse.String(), dbTime(n.NotBefore), dbTime(n.Expires), n.Note, dbTime(now), actor); err != nil {
			return err
		}
		for _, number := range cards {
			if err := addSubsidyCredit(tx, n, number, actor, now); err != nil {
				return err
			}
		}
		added = true
		return nil
	})
	if err != nil {
		return b, false, err
	}
	b, err = s.subsidy(ctx, n.ID)
	return b, added, err
}

// addSubsidyCredit writes card number's credit of batch n, in the batch's
// transaction: a credit like any other (its change and ledger line), then
// bound to the batch's purse and window.
func addSubsidyCredit(tx *sql.Tx, n NewSubsidy, number, actor string, now time.Time) error {
	cd, err := card(tx, number)
	if err != nil {
		return err
	}
	if cd.Kind == CardM1 {
		return fmt.Errorf("card %s is an M1 wallet: a subsidy loads onto an e-purse's EP or ED", redact.CardNumber(number))
	}
	if err := refuseClosed(tx, number); err != nil {
		return err
	}
	id, err := newCreditID()
	if err != nil {
		return err
	}
	note := n.Note
	if note == "" {
		note = "subsidy " + n.ID
	}
	if err := insertCredit(tx, id, number, n.AmountFen, note, actor, now); err != nil {
		return err
	}
	_, err = tx.Exec(`UPDATE credits SET subsidy = ?, purse = ?, not_before = ?, expires = ? WHERE id = ?`,
		n.ID, n.Purse.String(), dbTime(n.NotBefore), dbTime(n.Expires), id)
	return err
}

const subsidySelect = `SELECT s.id, s.amount_fen, s.purse, s.not_before, s.expires, s.note, s.created, s.actor,
	count(c.id), coalesce(sum(CASE WHEN c.state = 'consumed' THEN 1 ELSE 0 END), 0),
	coalesce(sum(CASE WHEN c.state = 'pending' THEN 1 ELSE 0 END), 0),
	coalesce(sum(CASE WHEN c.state = 'cancelled' THEN 1 ELSE 0 END), 0)
	FROM subsidies s LEFT JOIN credits c ON c.subsidy = s.id`

func scanSubsidy(sc interface{ Scan(...any) error }) (Subsidy, error) {
	var b Subsidy
	err := sc.Scan(&b.ID, &b.AmountFen, &b.Purse, &b.NotBefore, &b.Expires, &b.Note, &b.Created, &b.Actor,
		&b.Cards, &b.Delivered, &b.Pending, &b.Withdrawn)
	b.NotBefore, b.Expires, b.Created = rfc3339(b.NotBefore), rfc3339(b.Expires), rfc3339(b.Created)
	return b, err
}

// subsidy reads one batch with its counts; ErrNotFound when there is none.
func (s *Store) subsidy(ctx context.Context, id string) (Subsidy, error) {
	b, err := scanSubsidy(s.db.QueryRowContext(ctx, subsidySelect+` WHERE s.id = ?
		GROUP BY s.id, s.amount_fen, s.purse, s.not_before, s.expires, s.note, s.created, s.actor`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("subsidy %q: %w", id, ErrNotFound)
	}
	return b, err
}

// Subsidies lists the batches, oldest first, with how many of each were
// delivered, are pending and were withdrawn.
func (s *Store) Subsidies(ctx context.Context) ([]Subsidy, error) {
	rows, err := s.db.QueryContext(ctx, subsidySelect+`
		GROUP BY s.id, s.amount_fen, s.purse, s.not_before, s.expires, s.note, s.created, s.actor ORDER BY s.created, s.id`)
	return scanAll(rows, err, scanSubsidy)
}

// withdrawBatch bounds one run of WithdrawExpiredSubsidies; the next run
// takes the rest.
const withdrawBatch = 1000

// WithdrawExpiredSubsidies withdraws the subsidies' credits that were not
// delivered by their batch's expiry: each is cancelled, with a "withdrawn"
// line in the ledger and a change that drops it from the terminals'
// caches. A credit a terminal holds a MAC2 for is left until the card's
// proof settles it (it may be on the card already); Authorize issues no
// new one after the expiry, so the next run takes it. Of several host
// processes on one PostgreSQL database, one at a time runs it; the others
// return 0 at once. It returns how many it withdrew.
func (s *Store) WithdrawExpiredSubsidies(ctx context.Context, actor string, now time.Time) (int, error) {
	n := 0
	_, err := s.exclusive(ctx, "subsidy-expiry", func(ctx context.Context) error {
		var err error
		n, err = s.withdrawExpired(ctx, actor, now)
		return err
	})
	return n, err
}

func (s *Store) withdrawExpired(ctx context.Context, actor string, now time.Time) (int, error) {
	type due struct{ id, card, batch string }
	rows, err := s.db.QueryContext(ctx, `SELECT id, card, subsidy FROM credits
		WHERE state = 'pending' AND expires IS NOT NULL AND expires <= ? ORDER BY seq LIMIT ?`, dbTime(now), withdrawBatch)
	list, err := scanAll(rows, err, func(sc interface{ Scan(...any) error }) (due, error) {
		var d due
		return d, sc.Scan(&d.id, &d.card, &d.batch)
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range list {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		detail := fmt.Sprintf("subsidy %s expired undelivered: withdrawn", d.batch)
		err := s.inCardTx(ctx, d.card, func(tx *sql.Tx) error {
			return cancelPending(tx, d.id, EventWithdrawn, actor, detail, now)
		})
		if _, held := errors.AsType[*creditHeldError](err); held {
			continue // settled by the card's proof first; a later run takes it
		}
		if err != nil {
			c, rerr := credit(s.db, d.id)
			if rerr == nil && c.State != hostapi.CreditPending {
				continue // delivered (or cancelled) since the list was read
			}
			return n, err
		}
		n++
	}
	return n, nil
}

// subsidyColumns are a credit's subsidy fields, "" for a credit of money
// paid: its batch, purse, and window.
var subsidyColumns = subsidyColumnsOf("")

// subsidyColumnsOf is subsidyColumns with each column named by prefix, a
// table alias and its dot.
func subsidyColumnsOf(prefix string) string {
	return fmt.Sprintf(`coalesce(%[1]ssubsidy, ''), coalesce(%[1]spurse, ''), coalesce(%[1]snot_before, ''), coalesce(%[1]sexpires, '')`, prefix)
}

// subsidyFields finishes a credit's subsidy fields as read: its kind, and
// the window in RFC 3339.
func subsidyFields(c *hostapi.Credit) {
	if c.Subsidy == "" {
		return
	}
	c.Kind = hostapi.CreditSubsidy
	c.NotBefore, c.Expires = rfc3339(c.NotBefore), rfc3339(c.Expires)
}

// checkSubsidy is the subsidy part of rule 1 of Authorize, by the host's
// clock: a subsidy's credit loads only within its window (after its expiry
// it is withdrawn, 404, even before WithdrawExpiredSubsidies has run) and
// only onto its purse.
func checkSubsidy(c CreditInfo, p epurse.Purse, now time.Time) error {
	if c.Subsidy == "" {
		return nil
	}
	if exp, err := time.Parse(time.RFC3339, c.Expires); err != nil {
		return fmt.Errorf("credit %s: stored expiry %q: %w", c.ID, c.Expires, err)
	} else if !now.Before(exp) {
		return notFound("credit %s: subsidy %s expired at %s undelivered and is withdrawn", c.ID, c.Subsidy, c.Expires)
	}
	if nb, err := time.Parse(time.RFC3339, c.NotBefore); err != nil {
		return fmt.Errorf("credit %s: stored start %q: %w", c.ID, c.NotBefore, err)
	} else if now.Before(nb) {
		return conflict(hostapi.CodeCreditNotYet, "credit %s: subsidy %s can be picked up from %s", c.ID, c.Subsidy, c.NotBefore)
	}
	if c.Purse != p.String() {
		return conflict(hostapi.CodeCreditPurse, "credit %s: subsidy %s loads onto the %s purse, not %v", c.ID, c.Subsidy, c.Purse, p)
	}
	return nil
}
