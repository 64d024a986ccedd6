package host

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
)

// maxNoteLen bounds a credit's note: it names a payment channel, not a story.
const maxNoteLen = 200

// CreditInfo is a credit with its fate, as the host's operators see it.
type CreditInfo struct {
	hostapi.Credit
	ConsumedAt  string `json:"consumed_at,omitempty"`  // RFC 3339
	ConsumedTAC string `json:"consumed_tac,omitempty"` // the card's TAC that proved the load
	ConsumedBy  string `json:"consumed_by,omitempty"`  // the terminal that loaded it
	// Approval is "awaiting" for a pending credit above the approval
	// threshold that no second operator has approved yet (no terminal
	// sees it), "approved" once one has, "" for a credit that never
	// needed one.
	Approval string `json:"approval,omitempty"`
}

// newCreditID makes a credit id: "cr-" and 16 random hex digits, unique
// without coordination and meaningless to guess.
func newCreditID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random credit id: %w", err)
	}
	return "cr-" + hex.EncodeToString(b[:]), nil
}

// AddCredit records money paid for a card, to be loaded onto it at the next
// tap. The card must have been issued here (ErrNotFound otherwise).
func (s *Store) AddCredit(ctx context.Context, number string, amountFen int64, note, actor string, now time.Time) (hostapi.Credit, error) {
	var c hostapi.Credit
	if amountFen <= 0 || amountFen > epurse.MaxAmount {
		return c, fmt.Errorf("credit amount %s: want more than 0.00 and at most %s", money.Format(amountFen), money.Format(epurse.MaxAmount))
	}
	if utf8.RuneCountInString(note) > maxNoteLen || !utf8.ValidString(note) {
		return c, fmt.Errorf("credit note: want UTF-8 text of at most %d characters", maxNoteLen)
	}
	id, err := newCreditID()
	if err != nil {
		return c, err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := card(tx, number); err != nil {
			return err
		}
		if err := refuseClosed(tx, number); err != nil {
			return err
		}
		above, err := approvalThreshold(tx)
		if err != nil {
			return err
		}
		if above > 0 && amountFen > above {
			return insertAwaiting(tx, id, number, amountFen, note, actor, above, now)
		}
		return insertCredit(tx, id, number, amountFen, note, actor, now)
	})
	if err != nil {
		return c, err
	}
	// A credit awaiting approval is pending too: its approval is what
	// keeps it from terminals (Store.Credit shows it).
	return hostapi.Credit{ID: id, Card: number, AmountFen: amountFen, Note: note, Created: now.UTC().Format(time.RFC3339), State: hostapi.CreditPending}, nil
}

// insertCredit writes a pending credit with its change and ledger entry, in
// the caller's transaction: AddCredit's, or a paid top-up order's, whose
// credit takes the order's id.
func insertCredit(tx *sql.Tx, id, number string, amountFen int64, note, actor string, now time.Time) error {
	if _, err := tx.Exec(`INSERT INTO credits (id, card, amount_fen, note, state, created) VALUES (?, ?, ?, ?, 'pending', ?)`,
		id, number, amountFen, note, dbTime(now)); err != nil {
		return err
	}
	if err := addChange(tx, id, hostapi.CreditPending, number, now); err != nil {
		return err
	}
	if err := addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventAdded, Credit: id, Card: number, AmountFen: &amountFen, Detail: note}); err != nil {
		return err
	}
	// Money that arrives for a closed card goes back with its refund.
	return refundPending(tx, number, actor, now)
}

// addChange puts a credit's new state into the change feed.
func addChange(tx *sql.Tx, credit, state, number string, now time.Time) error {
	_, err := tx.Exec(`INSERT INTO changes (kind, credit, state, card, time) VALUES ('credit', ?, ?, ?, ?)`, credit, state, number, dbTime(now))
	return err
}

var creditColumns = `id, card, amount_fen, note, state, created, coalesce(consumed_at, ''), coalesce(consumed_tac, ''), coalesce(consumed_by, ''), approval,
	` + subsidyColumns

func scanCredit(sc interface{ Scan(...any) error }) (CreditInfo, error) {
	var c CreditInfo
	err := sc.Scan(&c.ID, &c.Card, &c.AmountFen, &c.Note, &c.State, &c.Created, &c.ConsumedAt, &c.ConsumedTAC, &c.ConsumedBy, &c.Approval,
		&c.Subsidy, &c.Purse, &c.NotBefore, &c.Expires)
	c.Created, c.ConsumedAt = rfc3339(c.Created), rfc3339(c.ConsumedAt)
	subsidyFields(&c.Credit)
	return c, err
}

// credit reads one credit; ErrNotFound when there is none.
func credit(q querier, id string) (CreditInfo, error) {
	c, err := scanCredit(q.QueryRow(`SELECT `+creditColumns+` FROM credits WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("credit %q: %w", id, ErrNotFound)
	}
	return c, err
}

// Credits lists the credits of a card, or of every card for "", oldest first.
func (s *Store) Credits(ctx context.Context, number string) ([]CreditInfo, error) {
	q := `SELECT ` + creditColumns + ` FROM credits ORDER BY seq`
	args := []any{}
	if number != "" {
		q = `SELECT ` + creditColumns + ` FROM credits WHERE card = ? ORDER BY seq`
		args = append(args, number)
	}
	return queryCredits(s.db, q, args...)
}

func queryCredits(q querier, query string, args ...any) ([]CreditInfo, error) {
	rows, err := q.Query(query, args...)
	return scanAll(rows, err, scanCredit)
}

// CancelCredit withdraws a pending credit (a refund, a mistake) with no
// reason given; CancelCreditWithReason says why.
func (s *Store) CancelCredit(ctx context.Context, id, actor string, now time.Time) error {
	return s.CancelCreditWithReason(ctx, id, actor, "", now)
}

// CancelCreditWithReason withdraws a pending credit, awaiting approval or
// not, and puts the operator's reason in the ledger. A credit with an
// open authorization is refused: its MAC2 is out there and the card may be
// loaded with it at any moment, so only the card's proof (TAC or a
// not-applied probe) may settle it first. A consumed credit is on the
// card: only a correction (CorrectCredit) answers a mistake then.
func (s *Store) CancelCreditWithReason(ctx context.Context, id, actor, reason string, now time.Time) error {
	if err := checkReason(reason); err != nil {
		return err
	}
	return s.inCardTx(ctx, s.cardOfCredit(ctx, id), func(tx *sql.Tx) error {
		return cancelPending(tx, id, EventCancelled, actor, reason, now)
	})
}

// creditHeldError refuses to cancel a credit that a terminal holds a MAC2
// (or an M1 load) for: only the card's proof may settle it first.
type creditHeldError struct{ msg string }

func (e *creditHeldError) Error() string { return e.msg }

// cancelPending cancels pending credit id in tx, with its change and a
// ledger line of event: an operator's cancel, or a subsidy withdrawn at
// its expiry. A credit held by an open authorization is a
// *creditHeldError and changes nothing.
func cancelPending(tx *sql.Tx, id, event, actor, detail string, now time.Time) error {
	c, err := credit(tx, id)
	if err != nil {
		return err
	}
	if c.State == hostapi.CreditConsumed {
		return fmt.Errorf("credit %s was loaded onto the card at %s: it cannot be cancelled; "+
			"record a correction with 'cardhost credit correct' and recover the money from the holder", id, c.ConsumedAt)
	}
	if c.State != hostapi.CreditPending {
		return fmt.Errorf("credit %s is %s, only a pending credit can be cancelled", id, c.State)
	}
	var counter int64
	err = tx.QueryRow(`SELECT counter FROM authorizations WHERE credit = ? AND state = 'open'`, id).Scan(&counter)
	if err == nil {
		return &creditHeldError{fmt.Sprintf("credit %s is authorized at counter %d and may be on the card already: it can be cancelled once a terminal reports the card's proof", id, counter)}
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if l, err := openM1Load(tx, id); err != nil {
		return err
	} else if l != nil {
		return &creditHeldError{fmt.Sprintf("credit %s is authorized to terminal %s at a wallet balance of %s and may be on the M1 wallet already: "+
			"it can be cancelled once that terminal reports, or after 'cardhost credit settle-m1'", id, l.Terminal, money.Format(l.OldBalance))}
	}
	if _, err := tx.Exec(`UPDATE credits SET state = 'cancelled' WHERE id = ?`, id); err != nil {
		return err
	}
	// A credit still awaiting approval never reached the feed: no
	// terminal has anything to drop.
	if c.Approval != approvalAwaiting {
		if err := addChange(tx, id, hostapi.CreditCancelled, c.Card, now); err != nil {
			return err
		}
	}
	return addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: event, Credit: id, Card: c.Card, AmountFen: &c.AmountFen, Detail: detail})
}

// cardOfCredit is the card a credit is for, read before the transaction
// that takes the card's lock (a credit never changes card); "" when it
// cannot be read, and the transaction then finds out why.
func (s *Store) cardOfCredit(ctx context.Context, id string) string {
	var number string
	s.db.QueryRowContext(ctx, `SELECT card FROM credits WHERE id = ?`, id).Scan(&number)
	return number
}

// pendingCredits answers /v1/card/credits.
func (s *Store) pendingCredits(ctx context.Context, number string) (hostapi.CardCreditsResponse, error) {
	r := hostapi.CardCreditsResponse{Credits: []hostapi.Credit{}}
	if _, err := card(s.db, number); err != nil {
		return r, err
	}
	var err error
	if r.Credits, err = pendingOf(s.db, number, ""); err != nil {
		return r, err
	}
	if r.Denied, r.Reason, err = denyState(s.db, number); err != nil {
		return r, err
	}
	r.M1Open, err = openM1OfCard(s.db, number)
	return r, err
}

// pendingOf lists a card's pending credits, oldest first, as a terminal
// gets them: every one but the credit named except ("" leaves none out),
// and none that awaits approval.
// /v1/card/credits answers with it, and so does an authorization, for the
// card's other credits, read in the transaction that authorizes.
func pendingOf(q querier, number, except string) ([]hostapi.Credit, error) {
	list, err := queryCredits(q, `SELECT `+creditColumns+` FROM credits WHERE card = ? AND state = 'pending' AND approval != 'awaiting' AND id != ? ORDER BY seq`, number, except)
	if err != nil {
		return nil, err
	}
	out := make([]hostapi.Credit, 0, len(list))
	for _, c := range list {
		out = append(out, c.Credit)
	}
	return out, nil
}

// Pull limits: a default that fits one answer comfortably under the
// terminal's 8 MiB read limit, and a ceiling on what a terminal may ask.
const (
	DefaultPullLimit = 500
	MaxPullLimit     = 5000
)

// parseCursor reads a pull cursor: "" is the start, otherwise the decimal
// sequence number of the last change delivered. Terminals treat it as opaque.
func parseCursor(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("cursor %q is not one this host gave", s)
	}
	return n, nil
}

// pull answers /v1/pull: changes after the cursor, in order, at most limit.
// Each credit change carries the state the credit changed to, so a terminal
// that applies them in order ends where the host is.
func (s *Store) pull(ctx context.Context, cursor int64, limit int) (hostapi.PullResponse, error) {
	r := hostapi.PullResponse{Credits: []hostapi.Credit{}, Deny: []hostapi.DenyChange{}, Classes: []hostapi.ClassChange{}, NextCursor: strconv.FormatInt(cursor, 10)}
	rows, err := s.db.QueryContext(ctx, `SELECT ch.seq, ch.kind, ch.card, coalesce(ch.state, ''), coalesce(ch.denied, 0), coalesce(ch.reason, ''), coalesce(ch.class, ''), coalesce(ch.product, ''),
			coalesce((SELECT k.product FROM cards k WHERE k.number = ch.card AND ch.kind = 'credit'), ''),
			coalesce(c.id, ''), coalesce(c.amount_fen, 0), coalesce(c.note, ''), coalesce(c.created, ''),
			`+subsidyColumnsOf("c.")+`
		FROM changes ch LEFT JOIN credits c ON c.id = ch.credit
		WHERE ch.seq > ? ORDER BY ch.seq LIMIT ?`, cursor, limit+1)
	if err != nil {
		return r, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if n == limit {
			r.More = true
			break
		}
		n++
		var seq int64
		var kind, number, state, reason, class, prod string
		var denied bool
		var c hostapi.Credit
		if err := rows.Scan(&seq, &kind, &number, &state, &denied, &reason, &class, &prod, &c.CardProduct, &c.ID, &c.AmountFen, &c.Note, &c.Created,
			&c.Subsidy, &c.Purse, &c.NotBefore, &c.Expires); err != nil {
			return r, err
		}
		r.NextCursor = strconv.FormatInt(seq, 10)
		switch kind {
		case "deny":
			r.Deny = append(r.Deny, hostapi.DenyChange{Card: number, Denied: denied, Reason: reason})
			continue
		case "class":
			r.Classes = append(r.Classes, hostapi.ClassChange{Card: number, Class: class})
			continue
		case "product":
			// A product edit (no card) is carried by r.Products.
			if number != "" {
				r.CardProducts = append(r.CardProducts, hostapi.ProductChange{Card: number, Product: prod})
			}
			continue
		case "close":
			r.Closes = append(r.Closes, hostapi.CloseChange{Card: number, ID: hostapi.CloseID(number)})
			continue
		}
		c.Card, c.State, c.Created = number, state, rfc3339(c.Created)
		subsidyFields(&c)
		r.Credits = append(r.Credits, c)
	}
	if err := rows.Err(); err != nil {
		return r, err
	}
	rows.Close()
	// Every answer carries the products as they are: a handful of rows,
	// and a terminal that missed an edit (or pulled before products
	// existed) has them all again.
	ps, err := products(s.db)
	for _, p := range ps {
		r.Products = append(r.Products, p.Product)
	}
	return r, err
}
