package host

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
)

// Ledger events of closing a card (销户).
const (
	EventCloseAsked = "close-asked" // an operator asked to close the card (detail: the reason)
	EventClosed     = "closed"      // a terminal's closing debit took the balance: the amount is the refund due
)

// Close states.
const (
	ClosePending = "pending" // asked; waiting for the card at a terminal
	CloseClosed  = "closed"  // the closing debit reached the host: the refund is due
)

// DenyReasonClosed is the deny-list reason of a closed card: no terminal
// serves it again.
const DenyReasonClosed = "closed"

// ErrClosedCard is wrapped by the refusal to lift the deny on a closed
// card: its balance left it as a refund owed to the holder.
var ErrClosedCard = errors.New("card was closed")

// Close is a card's close as the host keeps it.
type Close struct {
	Card      string `json:"card"`
	Holder    string `json:"holder"`
	State     string `json:"state"` // ClosePending or CloseClosed
	Operator  string `json:"operator"`
	Reason    string `json:"reason"`
	Requested string `json:"requested"` // RFC 3339
	// The rest is set once closed: the refund due to the holder (the
	// balance the closing debit took; 0 for a card that held nothing),
	// the terminal and journal row that closed it, and its TAC check.
	RefundFen *int64 `json:"refund_fen,omitempty"`
	// CreditsFen is the part of the refund due that is credits of the
	// card cancelled for its close, when it was asked or since (never
	// loaded, the holder's money: refundPending).
	CreditsFen int64  `json:"credits_fen"`
	Terminal   string `json:"terminal,omitempty"`
	JournalID  string `json:"journal_id,omitempty"`
	Closed     string `json:"closed,omitempty"` // RFC 3339
	TACCheck   string `json:"tac_check,omitempty"`
}

// CloseRefusedError refuses to close a card, and says why: nothing changed.
type CloseRefusedError struct {
	Card   string
	Reason string
}

func (e *CloseRefusedError) Error() string {
	return fmt.Sprintf("card %s cannot be closed: %s", redact.CardNumber(e.Card), e.Reason)
}

// refundable refuses a card whose balance may not be refunded on closing:
// its product says (the built-in named product's may; an anonymous card's
// balance is its bearer's, whoever that is, and the host cannot tell whom
// to pay).
func refundable(q querier, c Card) error {
	p, err := cardProduct(q, c.Number)
	if err != nil {
		return err
	}
	if !p.Refundable {
		return &CloseRefusedError{Card: c.Number, Reason: p.Name + " card: balance not refundable"}
	}
	return nil
}

// CloseCard asks to close an e-purse card the host issued: its pending
// credits are cancelled (a credit a terminal holds an authorization for
// refuses the close, since it may be on the card already: close once it is
// settled), and terminals learn through /v1/pull that its next tap debits
// its whole balance. It reports whether anything changed: a card already
// pending close is left as it was; a closed one is ErrExists. Reason is
// required.
func (s *Store) CloseCard(ctx context.Context, number, actor, reason string, now time.Time) (changed bool, err error) {
	if err := CheckCardNumber(number); err != nil {
		return false, err
	}
	if reason == "" {
		return false, errors.New("a close needs a reason (--reason)")
	}
	if err := checkReason(reason); err != nil {
		return false, err
	}
	err = s.inCardTx(ctx, number, func(tx *sql.Tx) error {
		changed = false // a retry starts over
		c, err := card(tx, number)
		if err != nil {
			return err
		}
		if old, found, err := closeOf(tx, number); err != nil {
			return err
		} else if found && old.State == ClosePending {
			return nil
		} else if found {
			return fmt.Errorf("card %s was closed at %s: %w", redact.CardNumber(number), old.Closed, ErrExists)
		}
		if err := closable(tx, c); err != nil {
			return err
		}
		credits, err := cancelForClose(tx, number, actor, now)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO closes (card, state, operator, reason, requested, credits_fen) VALUES (?, 'pending', ?, ?, ?, ?)`,
			number, actor, reason, dbTime(now), credits); err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO changes (kind, card, time) VALUES ('close', ?, ?)`, number, dbTime(now)); err != nil {
			return err
		}
		changed = true
		return addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventCloseAsked, Card: number, Detail: reason})
	})
	return changed, err
}

// closable refuses a card no terminal would close: an M1 wallet (its
// value block has no PSAM debit or TAC to prove a closing debit by), a
// card on the deny list (no terminal serves it), one whose balance is not
// refundable.
func closable(q querier, c Card) error {
	if c.Kind != CardEPurse {
		return &CloseRefusedError{Card: c.Number, Reason: "an M1 wallet is not closed at a terminal (no PSAM debit and TAC prove its balance)"}
	}
	if denied, why, err := denyState(q, c.Number); err != nil {
		return err
	} else if denied {
		return &CloseRefusedError{Card: c.Number, Reason: fmt.Sprintf("it is on the deny list (%s): no terminal serves it", why)}
	}
	// The lost card's balance becomes a credit of this card only when
	// the replacement settles: closed before, that credit would wait on a
	// card no terminal serves, outside the refund due.
	if r, found, err := replacementOf(q, c.Number); err != nil {
		return err
	} else if found && r.New == c.Number && r.State == replaceSettling {
		return &CloseRefusedError{Card: c.Number, Reason: fmt.Sprintf("it still waits for the balance of lost card %s (replacement settling until %s): close it once that is loaded",
			redact.CardNumber(r.Old), r.SettleUntil)}
	}
	return refundable(q, c)
}

// cancelForClose cancels the card's pending credits, so that nothing is
// loaded onto a card being emptied, and returns what of them goes back
// with the refund: the holder's money never loaded. A subsidy is the
// operator's grant, withdrawn and not paid out. A credit still awaiting a
// second operator's approval refuses the close: refunded, it would pay
// out what nobody approved; cancelled unpaid, it would lose the holder's
// money if it was theirs. The ledger says cancelled, with the close as
// the reason.
func cancelForClose(tx *sql.Tx, number, actor string, now time.Time) (refundFen int64, err error) {
	list, err := queryCredits(tx, `SELECT `+creditColumns+` FROM credits WHERE card = ? AND state = 'pending' ORDER BY seq`, number)
	if err != nil {
		return 0, err
	}
	for _, c := range list {
		if c.Approval == approvalAwaiting {
			return 0, &CloseRefusedError{Card: number, Reason: fmt.Sprintf("credit %s of %s awaits a second operator's approval: approve it (it then goes back with the refund) or cancel it first",
				c.ID, money.Format(c.AmountFen))}
		}
	}
	refundFen, held, err := cancelToRefund(tx, list, actor, "the card is being closed", now)
	if held != nil {
		return 0, &CloseRefusedError{Card: number, Reason: held.msg}
	}
	return refundFen, err
}

// cancelToRefund cancels credits, stopping at the first a terminal holds
// an authorization for (held), and returns the holder's money among those
// it cancelled: every one but a subsidy, the operator's grant.
func cancelToRefund(tx *sql.Tx, list []CreditInfo, actor, reason string, now time.Time) (refundFen int64, held *creditHeldError, err error) {
	for _, c := range list {
		if err := cancelPending(tx, c.ID, EventCancelled, actor, reason, now); errors.As(err, &held) {
			return refundFen, held, nil
		} else if err != nil {
			return 0, nil, err
		}
		if c.Subsidy == "" {
			refundFen += c.AmountFen
		}
	}
	return refundFen, nil, nil
}

const closeColumns = `cl.card, coalesce(c.holder, ''), cl.state, cl.operator, cl.reason, cl.requested,
	cl.refund_fen, cl.credits_fen, coalesce(cl.terminal, ''), coalesce(cl.journal_id, ''), coalesce(cl.closed, ''), coalesce(cl.tac_check, '')`

func scanClose(sc interface{ Scan(...any) error }) (Close, error) {
	var c Close
	var refund sql.NullInt64
	err := sc.Scan(&c.Card, &c.Holder, &c.State, &c.Operator, &c.Reason, &c.Requested, &refund, &c.CreditsFen, &c.Terminal, &c.JournalID, &c.Closed, &c.TACCheck)
	if refund.Valid {
		c.RefundFen = &refund.Int64
	}
	c.Requested = rfc3339(c.Requested)
	if c.Closed != "" {
		c.Closed = rfc3339(c.Closed)
	}
	return c, err
}

// closeOf reads a card's close; found is false when none was asked.
func closeOf(q querier, number string) (c Close, found bool, err error) {
	c, err = scanClose(q.QueryRow(`SELECT `+closeColumns+` FROM closes cl LEFT JOIN cards c ON c.number = cl.card WHERE cl.card = ?`, number))
	if errors.Is(err, sql.ErrNoRows) {
		return Close{}, false, nil
	}
	return c, err == nil, err
}

// Closes lists the closes in state (ClosePending, CloseClosed, or "" for
// all), oldest asked first. The closed ones are the refunds due.
func (s *Store) Closes(ctx context.Context, state string) ([]Close, error) {
	switch state {
	case "", ClosePending, CloseClosed:
	default:
		return nil, fmt.Errorf("close state %q: want %s, %s or none", state, ClosePending, CloseClosed)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+closeColumns+` FROM closes cl LEFT JOIN cards c ON c.number = cl.card
		WHERE ? = '' OR cl.state = ? ORDER BY cl.requested, cl.card`, state, state)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Close{}
	for rows.Next() {
		c, err := scanClose(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// closingRow reports whether uploaded row r closes its card: a done
// e-purse purchase (the closing debit) or, for a card that held nothing, a
// done read of amount 0, naming the card's close id in credit_id.
func closingRow(r hostapi.JournalRow) bool {
	if r.CreditID != hostapi.CloseID(r.Card) || r.State != rowDone {
		return false
	}
	return (r.Kind == rowPurchase && epursePurse(r.Purse)) || (r.Kind == rowRead && r.AmountFen == 0)
}

// closeFromRow records the refund due when stored row r is a card's
// closing row (closingRow), and puts the card on the deny list: no
// terminal serves it again. Its TAC is checked before (reconcileRow): a
// closing debit whose TAC does not verify closes nothing, and its alarm
// waits for an operator. The caller calls it once per row, when the row
// arrives or settles, so a replayed upload changes nothing. A closing
// debit that arrives after the card was closed (a second terminal that
// pulled the close debited it too, before either row reached the host)
// took money from the card all the same: it adds to the refund due. A
// close never asked records nothing.
func closeFromRow(tx *sql.Tx, terminal string, r hostapi.JournalRow, now time.Time) error {
	if !closingRow(r) {
		return nil
	}
	c, found, err := closeOf(tx, r.Card)
	if err != nil {
		return err
	}
	if !found {
		slog.Warn("a closing row for a card no close was asked for: nothing recorded", "card", redact.CardNumber(r.Card), "terminal", terminal, "journal", r.ID)
		return nil
	}
	check, err := closingCheck(tx, terminal, r, c.State, now)
	if err != nil || check == tacBad {
		return err
	}
	refund := r.AmountFen
	if c.State == ClosePending {
		// The credits the close cancelled go back with the first
		// closing row only.
		refund += c.CreditsFen
	}
	var counter *uint16
	if r.Kind == rowPurchase {
		counter = &r.Counter
	}
	detail := "refund due to " + c.Holder + ", journal row " + r.ID
	if c.CreditsFen > 0 {
		detail += fmt.Sprintf(" (of which %s the pending credits the close cancelled)", money.Format(c.CreditsFen))
	}
	if c.State == CloseClosed {
		if refund == 0 {
			return nil // an empty card's closing read after the close: nothing owed
		}
		// The close's check is its least: none once a debit it pays is
		// unproven.
		if _, err := tx.Exec(`UPDATE closes SET refund_fen = refund_fen + ?, tac_check = CASE WHEN ? = 'none' THEN 'none' ELSE tac_check END WHERE card = ?`,
			refund, check, r.Card); err != nil {
			return err
		}
		detail = "a further closing debit, added to the refund due to " + c.Holder + ", journal row " + r.ID
	} else if _, err := tx.Exec(`UPDATE closes SET state = 'closed', refund_fen = ?, terminal = ?, journal_id = ?, closed = ?, tac_check = ?
		WHERE card = ? AND state = 'pending'`, refund, terminal, r.ID, dbTime(now), check, r.Card); err != nil {
		return err
	}
	if err := addLedger(tx, ledgerEntry{Time: now, Actor: terminalActor(terminal), Event: EventClosed, Card: r.Card,
		Counter: counter, AmountFen: &refund, TAC: r.TAC, Detail: detail}); err != nil {
		return err
	}
	if _, err := deny(tx, r.Card, DenyReasonClosed, terminalActor(terminal), now); err != nil {
		return err
	}
	return refundPending(tx, r.Card, terminalActor(terminal), now)
}

// refundPending folds into a closed card's refund due the credits still
// pending on it, which no terminal will load onto a denied card: those
// added, or paid, while its close waited (the close cancelled only those
// there when it was asked), and those that arrive after it closed (a
// top-up paid late, a voided sale's refund; insertCredit calls it). Each
// is cancelled, the holder's money added to the refund due; a subsidy is
// withdrawn unpaid. A credit awaiting approval waits for its second
// operator, one a terminal holds an authorization for for its proof.
func refundPending(tx *sql.Tx, number, actor string, now time.Time) error {
	if c, found, err := closeOf(tx, number); err != nil || !found || c.State != CloseClosed {
		return err
	}
	list, err := queryCredits(tx, `SELECT `+creditColumns+` FROM credits WHERE card = ? AND state = 'pending' ORDER BY seq`, number)
	if err != nil {
		return err
	}
	var sum int64
	for _, c := range list {
		if c.Approval == approvalAwaiting {
			continue
		}
		// One at a time: a held one is skipped, the rest still cancelled.
		n, _, err := cancelToRefund(tx, []CreditInfo{c}, actor, "the card is closed: the credit goes back with its refund due", now)
		if err != nil {
			return err
		}
		sum += n
	}
	if sum == 0 {
		return nil
	}
	_, err = tx.Exec(`UPDATE closes SET refund_fen = refund_fen + ?, credits_fen = credits_fen + ? WHERE card = ?`, sum, sum, number)
	return err
}

// refuseClosed refuses an operator's new credit for a closed card: its
// balance is refunded at the desk, and a credit would only go back with
// the refund.
func refuseClosed(q querier, number string) error {
	if c, found, err := closeOf(q, number); err != nil {
		return err
	} else if found && c.State == CloseClosed {
		return fmt.Errorf("card %s was closed at %s: pay the holder at the desk with its refund due: %w", redact.CardNumber(number), c.Closed, ErrClosedCard)
	}
	return nil
}

// closingCheck is the TAC check of closing row r as its upload stored it
// (reconcileRow): ok, bad (it closes nothing), or none for a read, or for
// a debit with nothing to verify it by. A closing debit with no TAC or no
// PSAM terminal id is a terminal's word alone for money paid out at the
// desk, and a read that closes (state is the close's) a card the books
// say holds money is one for money owed nowhere: each raises an alarm.
func closingCheck(tx *sql.Tx, terminal string, r hostapi.JournalRow, state string, now time.Time) (string, error) {
	if r.Kind != rowPurchase {
		if state != ClosePending {
			return tacNone, nil
		}
		return tacNone, emptyReadAlarm(tx, terminal, r, now)
	}
	var check string
	if err := tx.QueryRow(`SELECT coalesce(tac_check, '') FROM journal WHERE terminal = ? AND id = ?`, terminal, r.ID).Scan(&check); err != nil {
		return "", err
	}
	if check == "" {
		check = tacNone
	}
	if check == tacNone && (r.TAC == "" || r.PSAMTerminal == "") {
		detail := fmt.Sprintf("closing debit %s of terminal %s (%s) has no TAC or PSAM terminal id to verify: the refund due includes it on the terminal's word; check the card before paying it",
			r.ID, terminal, money.Format(r.AmountFen))
		if _, err := insertAlarm(tx, r.Card, detail, now); err != nil {
			return "", err
		}
	}
	return check, nil
}

// emptyReadAlarm raises the alarm of closing read r when the host's books
// hold a balance for the card: a purchase not uploaded yet may have
// emptied it, or the terminal's word is wrong and the holder's money is
// on a card now denied, in no refund due.
func emptyReadAlarm(tx *sql.Tx, terminal string, r hostapi.JournalRow, now time.Time) error {
	cd, err := card(tx, r.Card)
	if err != nil {
		return err
	}
	books, err := bookBalance(tx, cd)
	if err != nil || books <= 0 {
		return err
	}
	detail := fmt.Sprintf("closing read %s of terminal %s says the card held nothing, the host's books say %s: refund due 0.00 unless its purchases arrive; check the card",
		r.ID, terminal, money.Format(books))
	_, err = insertAlarm(tx, r.Card, detail, now)
	return err
}

// closeRef reports whether row r's credit_id names its card's close, on a
// kind that may close a card (closingRow).
func closeRef(r hostapi.JournalRow) bool {
	return hostapi.IsCloseID(r.CreditID) && r.CreditID == hostapi.CloseID(r.Card) && (r.Kind == rowPurchase || r.Kind == rowRead)
}
