package host

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
)

// TopupNote is the note of a credit a paid kiosk top-up became.
const TopupNote = "kiosk-topup"

// TopupInfo is a top-up order as the host's operators see it.
type TopupInfo struct {
	hostapi.TopupOrder
	Terminal string `json:"terminal"`
	Created  string `json:"created"`             // RFC 3339
	ClosedAt string `json:"closed_at,omitempty"` // RFC 3339
	PaidAt   string `json:"paid_at,omitempty"`   // RFC 3339
	PaidVia  string `json:"paid_via,omitempty"`  // "notification" or "query"
	TxnID    string `json:"txn_id,omitempty"`    // the provider's transaction id
	// Late is true when the money arrived after the host had closed the
	// order: it is the card's credit all the same (docs/payment.md).
	Late bool `json:"late,omitempty"`
}

// topupKey is the form of a TopupOrderRequest's key.
var topupKey = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// newOrderID makes an order id: "tp-" and 32 random hex digits. Anyone on
// the network can reach the pay page and the notify endpoint, so an id must
// be impossible to guess.
func newOrderID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random order id: %w", err)
	}
	return "tp-" + hex.EncodeToString(b[:]), nil
}

const topupColumns = `id, terminal, card, amount_fen, provider, qr, state, created, expires,
	coalesce(closed_at, ''), coalesce(paid_at, ''), coalesce(paid_via, ''), coalesce(provider_txn, ''), late`

func scanTopup(sc interface{ Scan(...any) error }) (TopupInfo, error) {
	var o TopupInfo
	err := sc.Scan(&o.ID, &o.Terminal, &o.Card, &o.AmountFen, &o.Provider, &o.QR, &o.State, &o.Created, &o.Expires,
		&o.ClosedAt, &o.PaidAt, &o.PaidVia, &o.TxnID, &o.Late)
	o.Created, o.Expires, o.ClosedAt, o.PaidAt = rfc3339(o.Created), rfc3339(o.Expires), rfc3339(o.ClosedAt), rfc3339(o.PaidAt)
	if o.State != hostapi.TopupUnpaid {
		o.QR = ""
	}
	if o.State == hostapi.TopupPaid {
		o.CreditID = o.ID
	}
	return o, err
}

// topup reads an order; ErrNotFound when there is none.
func topup(q querier, id string) (TopupInfo, error) {
	o, err := scanTopup(q.QueryRow(`SELECT `+topupColumns+` FROM topup_orders WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return o, fmt.Errorf("top-up order %q: %w", id, ErrNotFound)
	}
	return o, err
}

// Topup returns an order; an error wrapping ErrNotFound when there is none.
func (s *Store) Topup(ctx context.Context, id string) (TopupInfo, error) { return topup(s.db, id) }

// Topups lists orders, newest first, of one card ("" for all) in one state
// ("" for all), at most limit.
func (s *Store) Topups(ctx context.Context, number, state string, limit int) ([]TopupInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+topupColumns+` FROM topup_orders
		WHERE (? = '' OR card = ?) AND (? = '' OR state = ?) ORDER BY created DESC, id LIMIT ?`, number, number, state, state, limit)
	return scanAll(rows, err, scanTopup)
}

// scanAll reads every row of a query with scan and closes them; err is the
// query's. The list is empty, not nil, when there are none: JSON [] for
// an operator's tools.
func scanAll[T any](rows *sql.Rows, err error, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// AmountMismatchError is a payment whose amount is not its order's: it is
// never credited, and the host's log says so for a person to look at.
type AmountMismatchError struct {
	OrderID           string
	OrderFen, PaidFen int64
}

func (e *AmountMismatchError) Error() string {
	return fmt.Sprintf("order %s is for %s, the payment says %s", e.OrderID, money.Format(e.OrderFen), money.Format(e.PaidFen))
}

// paidTopup is what payTopup did.
type paidTopup struct {
	Order    TopupInfo
	Credited bool // this call made the credit (false: it was paid before)
	Late     bool // the host had closed the order before the money came
	// OtherTxn is the transaction id of a payment of an order paid before
	// under another id: money twice for one order, not credited again.
	OtherTxn string
}

// payTopup turns a paid payment into the card's credit, exactly once: in one
// IMMEDIATE transaction it reads the order, and only an order not yet paid
// gets its credit (with the order's id, which the credits table also holds
// unique). An order the host closed is credited too: the money arrived and
// must not be lost. A payment of another amount is refused and changes
// nothing.
func (s *Store) payTopup(ctx context.Context, p Payment, via string, now time.Time) (paidTopup, error) {
	var res paidTopup
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res = paidTopup{} // a retry starts over
		o, err := topup(tx, p.OrderID)
		if err != nil {
			return err
		}
		res.Order = o
		if p.AmountFen != o.AmountFen {
			return &AmountMismatchError{OrderID: o.ID, OrderFen: o.AmountFen, PaidFen: p.AmountFen}
		}
		if o.State == hostapi.TopupPaid {
			if p.TxnID != o.TxnID {
				res.OtherTxn = p.TxnID
			}
			return nil
		}
		res.Late = o.State == hostapi.TopupClosed
		if err := insertCredit(tx, o.ID, o.Card, o.AmountFen, TopupNote, "payment "+o.Provider, now); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE topup_orders SET state = 'paid', paid_at = ?, paid_via = ?, provider_txn = ?, late = ? WHERE id = ?`,
			dbTime(now), via, p.TxnID, sqlBool(res.Late), o.ID); err != nil {
			return err
		}
		res.Credited = true
		res.Order, err = topup(tx, o.ID)
		return err
	})
	return res, err
}

// closeTopup marks an unpaid order closed; an order paid meanwhile stays
// paid. It returns the order as it is after.
func (s *Store) closeTopup(ctx context.Context, id string, now time.Time) (TopupInfo, error) {
	var o TopupInfo
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`UPDATE topup_orders SET state = 'closed', closed_at = ? WHERE id = ? AND state = 'unpaid'`, dbTime(now), id); err != nil {
			return err
		}
		var err error
		o, err = topup(tx, id)
		return err
	})
	return o, err
}

// expiredTopups lists unpaid orders whose time is up, oldest first, at most limit.
func (s *Store) expiredTopups(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM topup_orders WHERE state = 'unpaid' AND expires <= ? ORDER BY expires LIMIT ?`, dbTime(now), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// newTopup records the order a terminal asks for, or returns the one it
// asked for before with the same key (created false). The card must be
// issued here and not denied, and the amount must fit under the balance cap
// beside the card's balance the terminal read and its pending credits: an
// order that could never be loaded would take money the card cannot hold.
func (s *Store) newTopup(ctx context.Context, term, provider string, req hostapi.TopupOrderRequest, balanceCap int64, expires, now time.Time) (TopupInfo, bool, error) {
	var o TopupInfo
	created := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		o, created = TopupInfo{}, false // a retry starts over
		var id string
		err := tx.QueryRow(`SELECT id FROM topup_orders WHERE terminal = ? AND key = ?`, term, req.Key).Scan(&id)
		if err == nil {
			if o, err = topup(tx, id); err != nil {
				return err
			}
			if o.Card != req.Card || o.AmountFen != req.AmountFen {
				return badRequest("key %q was used for order %s of %s for card %s", req.Key, o.ID, money.Format(o.AmountFen), redact.CardNumber(o.Card))
			}
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err := checkTopupCard(tx, req, balanceCap, now); err != nil {
			return err
		}
		if id, err = newOrderID(); err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO topup_orders (id, terminal, key, card, amount_fen, provider, state, created, expires) VALUES (?, ?, ?, ?, ?, ?, 'unpaid', ?, ?)`,
			id, term, req.Key, req.Card, req.AmountFen, provider, dbTime(now), dbTime(expires)); err != nil {
			return err
		}
		created = true
		o, err = topup(tx, id)
		return err
	})
	return o, created, err
}

// checkTopupCard refuses an order for a card this host cannot credit.
func checkTopupCard(tx *sql.Tx, req hostapi.TopupOrderRequest, balanceCap int64, now time.Time) error {
	if _, err := card(tx, req.Card); errors.Is(err, ErrNotFound) {
		return notFound("card %s was not issued by this host", redact.CardNumber(req.Card))
	} else if err != nil {
		return err
	}
	denied, reason, err := denyState(tx, req.Card)
	if err != nil {
		return err
	}
	if denied {
		return conflict(hostapi.CodeCardDenied, "card %s is on the deny list (%s)", redact.CardNumber(req.Card), reason)
	}
	var pending int64
	if err := tx.QueryRow(`SELECT coalesce(sum(amount_fen), 0) FROM credits WHERE card = ? AND state = 'pending'`, req.Card).Scan(&pending); err != nil {
		return err
	}
	if req.BalanceFen+pending+req.AmountFen > balanceCap {
		return conflict(hostapi.CodeBalanceCap, "balance %s + pending credits %s + %s would exceed the cap of %s",
			money.Format(req.BalanceFen), money.Format(pending), money.Format(req.AmountFen), money.Format(balanceCap))
	}
	// The card's product may hold it to less: an order it could never
	// load is refused before it is paid.
	return checkProductLoad(tx, req.Card, req.BalanceFen+pending, req.AmountFen, 0, now)
}

// setTopupQR stores the provider's QR content of an order.
func (s *Store) setTopupQR(ctx context.Context, id, qr string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE topup_orders SET qr = ? WHERE id = ?`, qr, id)
	return err
}

// checkTopupRequest refuses a malformed order request.
func checkTopupRequest(req hostapi.TopupOrderRequest) error {
	if err := hostapi.CheckCardID(req.Card); err != nil {
		return badCard(err)
	}
	if !topupKey.MatchString(req.Key) {
		return badRequest("key %q: want 1 to 64 characters of A-Z a-z 0-9 _ -", req.Key)
	}
	if req.AmountFen <= 0 || req.AmountFen > epurse.MaxAmount {
		return badRequest("amount_fen %d: want more than 0 and at most %d", req.AmountFen, int64(epurse.MaxAmount))
	}
	if req.BalanceFen < 0 || req.BalanceFen > epurse.MaxAmount {
		return badRequest("balance_fen %d: want 0 to %d", req.BalanceFen, int64(epurse.MaxAmount))
	}
	return nil
}
