package host

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
)

// Lost-card replacement (挂失补办). A named card reported lost is on the
// deny list; Replace names the card its balance goes to. The balance is
// the old card's last one in its purse books (the reconciliation's
// purse_books: the balance after its newest uploaded move, or its issue
// balance before any), so every purchase of the old card uploaded before
// the replacement settles is taken off. It settles, as one credit to the
// new card, when the settle window ends, or earlier once the balance is
// certain: every registered terminal has applied the deny (its pull
// cursor is past the deny change) and has since reported an empty upload
// queue (a heartbeat the host received after that pull, queue depth 0), and
// none of the old card's rows is in doubt. No terminal can then hold a row
// of the old card that the host lacks, but one that took it before it
// applied the deny and reported a stale queue depth; such a row, and any
// other that comes after the credit, is not lost: it is recorded as debt
// owed by the replacement, with an alarm.

// DefaultSettle is the settle window of a replacement: offline terminals
// have this long to upload the old card's rows before its balance is
// carried over.
const DefaultSettle = 7 * 24 * time.Hour

// maxSettle bounds a settle window: longer keeps a holder's money from
// them for no terminal's sake.
const maxSettle = 366 * 24 * time.Hour

// Ledger events of a replacement.
const (
	EventReplaced        = "replaced"         // the old card was replaced (detail: by which card, the balance known)
	EventReplacement     = "replacement"      // the new card replaces a lost one (detail: which)
	EventReplaceSettled  = "replace_settled"  // the settle window closed: the balance carried (amount), why
	EventReplacementDebt = "replacement_debt" // a row of the old card came after the credit: owed (amount negative)
)

// Replacement states.
const (
	replaceSettling = "settling"
	replaceSettled  = "settled"
)

// Why a replacement settled.
const (
	settledWindow  = "window"  // its settle window ended
	settledCertain = "certain" // every terminal proved it holds no more rows of the old card
)

// ErrNotReplaceable is wrapped by the refusals of Replace: a card that
// cannot be replaced, or not by this card, or not now.
var ErrNotReplaceable = errors.New("cannot be replaced")

// ErrReplacedCard is wrapped by the refusal to lift the deny on a card
// that was replaced: its balance went to another card.
var ErrReplacedCard = errors.New("card was replaced")

// Replacement is a lost card's replacement and what became of its balance.
type Replacement struct {
	Old         string `json:"old"`
	New         string `json:"new"`
	Reported    string `json:"reported"` // RFC 3339: when the old card went on the deny list
	Replaced    string `json:"replaced"` // RFC 3339
	SettleUntil string `json:"settle_until"`
	State       string `json:"state"` // settling or settled
	// ReportedFen is the old card's balance the host knew when it was
	// replaced; CreditedFen what the credit carried once settled (less
	// the purchases uploaded meanwhile).
	ReportedFen int64  `json:"reported_fen"`
	Credit      string `json:"credit,omitempty"`
	CreditedFen int64  `json:"credited_fen"`
	Settled     string `json:"settled,omitempty"`
	SettledWhy  string `json:"settled_why,omitempty"` // window or certain
	// DebtFen is what the old card's rows uploaded after the credit took
	// off it: owed by the replacement's holder.
	DebtFen int64  `json:"debt_fen"`
	Actor   string `json:"actor"`
	Reason  string `json:"reason,omitempty"`
}

// replaceable decides whether a card may be replaced at all: its product
// says (the built-in named product may, anonymous may not, as nobody can
// prove an anonymous card theirs).
func replaceable(q querier, c Card) error {
	p, err := cardProduct(q, c.Number)
	if err != nil {
		return err
	}
	if !p.Replaceable {
		return fmt.Errorf("card %s: %s card cannot be replaced (its product does not allow it): %w", redact.CardNumber(c.Number), p.Name, ErrNotReplaceable)
	}
	return nil
}

const replacementColumns = `old, new, reported, replaced, settle_until, state, reported_fen, coalesce(credit, ''), coalesce(credited_fen, 0),
	coalesce(settled, ''), coalesce(settled_why, ''), debt_fen, actor, reason`

func scanReplacement(sc interface{ Scan(...any) error }) (Replacement, error) {
	var r Replacement
	err := sc.Scan(&r.Old, &r.New, &r.Reported, &r.Replaced, &r.SettleUntil, &r.State, &r.ReportedFen, &r.Credit, &r.CreditedFen,
		&r.Settled, &r.SettledWhy, &r.DebtFen, &r.Actor, &r.Reason)
	r.Reported, r.Replaced, r.SettleUntil, r.Settled = rfc3339(r.Reported), rfc3339(r.Replaced), rfc3339(r.SettleUntil), rfc3339(r.Settled)
	return r, err
}

// replacementOf reads the replacement card number is the old or the new
// card of; found false when none.
func replacementOf(q querier, number string) (r Replacement, found bool, err error) {
	r, err = scanReplacement(q.QueryRow(`SELECT `+replacementColumns+` FROM replacements WHERE old = ? OR new = ? ORDER BY old = ? DESC LIMIT 1`,
		number, number, number))
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	return r, err == nil, err
}

// Replacement returns the replacement card number is the old or else the
// new card of; ErrNotFound when none.
func (s *Store) Replacement(ctx context.Context, number string) (Replacement, error) {
	r, found, err := replacementOf(s.db, number)
	if err == nil && !found {
		err = fmt.Errorf("replacement of card %s: %w", redact.CardNumber(number), ErrNotFound)
	}
	return r, err
}

// bookBalance is a card's EP balance as the host last knows it from the
// card's own rows: the balance after its newest uploaded move in the
// reconciliation's books, or its issue balance before it has any. A move
// whose TAC the card's key does not give is none of the card's (a
// terminal's invention, alarmed): when the books hold one, the balance is
// the one after the newest other move, so that a forged row neither drains
// a replaced card's balance nor inflates it.
func bookBalance(q querier, c Card) (int64, error) {
	var forged int
	if err := q.QueryRow(`SELECT count(*) FROM recon_moves m JOIN journal j ON j.terminal = m.terminal AND j.id = m.row_id
		WHERE m.card = ? AND m.purse = 'EP' AND m.state = ? AND j.tac_check = ?`, c.Number, rowDone, tacBad).Scan(&forged); err != nil {
		return 0, err
	}
	if forged > 0 {
		var kind string
		var before, amount int64
		err := q.QueryRow(`SELECT m.kind, m.balance_fen, m.amount_fen FROM recon_moves m JOIN journal j ON j.terminal = m.terminal AND j.id = m.row_id
			WHERE m.card = ? AND m.purse = 'EP' AND m.state = ? AND j.tac_check <> ? ORDER BY m.time DESC LIMIT 1`,
			c.Number, rowDone, tacBad).Scan(&kind, &before, &amount)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return c.InitialBalanceFen, nil
		case err != nil:
			return 0, err
		case kind == rowPurchase:
			return before - amount, nil
		}
		return before + amount, nil
	}
	var last int64
	err := q.QueryRow(`SELECT last_after_fen FROM purse_books WHERE card = ? AND purse = 'EP'`, c.Number).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		return c.InitialBalanceFen, nil
	}
	return last, err
}

// ReplaceRequest names a lost card and its replacement.
type ReplaceRequest struct {
	Old, New string
	// Settle is the settle window; zero is DefaultSettle.
	Settle time.Duration
	Reason string
}

// Replace records that card New replaces lost card Old: Old must be an
// e-purse card issued here, named (replaceable), on the deny list and
// never replaced before; New an e-purse card issued here, not denied, and
// no replacement's old or new card. Old's balance reaches New as a credit
// when the replacement settles (SettleReplacements). Refusals wrap
// ErrNotReplaceable, ErrNotFound or ErrExists and change nothing.
func (s *Store) Replace(ctx context.Context, req ReplaceRequest, actor string, now time.Time) (Replacement, error) {
	var r Replacement
	for _, n := range []string{req.Old, req.New} {
		if err := CheckCardNumber(n); err != nil {
			return r, err
		}
	}
	if req.Old == req.New {
		return r, fmt.Errorf("card %s cannot replace itself: %w", redact.CardNumber(req.Old), ErrNotReplaceable)
	}
	settle := req.Settle
	if settle == 0 {
		settle = DefaultSettle
	}
	if settle < 0 || settle > maxSettle {
		return r, fmt.Errorf("settle window %s: want more than 0 and at most %s", settle, maxSettle)
	}
	if err := checkReason(req.Reason); err != nil {
		return r, err
	}
	err := s.inCardTx(ctx, req.Old, func(tx *sql.Tx) error {
		var err error
		r, err = insertReplacement(tx, req, settle, actor, now)
		return err
	})
	if err != nil && uniqueViolation(err) {
		// Another replacement took the new card since the checks.
		return r, fmt.Errorf("card %s is the replacement of another card already: %w", redact.CardNumber(req.New), ErrExists)
	}
	return r, err
}

// insertReplacement is Replace's checks and record in tx, under the old
// card's lock.
func insertReplacement(tx *sql.Tx, req ReplaceRequest, settle time.Duration, actor string, now time.Time) (Replacement, error) {
	var r Replacement
	old, err := card(tx, req.Old)
	if err != nil {
		return r, err
	}
	if old.Kind != CardEPurse {
		return r, fmt.Errorf("card %s is an M1 wallet: its balance lives on the wallet only: %w", redact.CardNumber(req.Old), ErrNotReplaceable)
	}
	if err := replaceable(tx, old); err != nil {
		return r, err
	}
	denied, _, err := denyState(tx, req.Old)
	if err != nil {
		return r, err
	}
	if !denied {
		return r, fmt.Errorf("card %s is not on the deny list: report it lost first ('cardhost deny add --card N'): %w",
			redact.CardNumber(req.Old), ErrNotReplaceable)
	}
	if prev, found, err := replacementOf(tx, req.Old); err != nil {
		return r, err
	} else if found && prev.Old == req.Old {
		return r, fmt.Errorf("card %s was replaced already, by card %s: %w", redact.CardNumber(req.Old), redact.CardNumber(prev.New), ErrExists)
	} else if found && prev.State == replaceSettling {
		return r, fmt.Errorf("card %s still waits for the balance of card %s: replace it once that settles: %w",
			redact.CardNumber(req.Old), redact.CardNumber(prev.Old), ErrNotReplaceable)
	}
	if err := checkNewCard(tx, req.New); err != nil {
		return r, err
	}
	// A credit still waiting for the old card is money the books do not
	// hold yet: carrying it too would need its approval and its open
	// authorization settled first, so the operator moves it by hand.
	var pending int
	if err := tx.QueryRow(`SELECT count(*) FROM credits WHERE card = ? AND state = 'pending'`, req.Old).Scan(&pending); err != nil {
		return r, err
	}
	if pending > 0 {
		return r, fmt.Errorf("card %s has %d pending credit(s) ('cardhost credit list --card'): cancel them and add them to card %s first: %w",
			redact.CardNumber(req.Old), pending, redact.CardNumber(req.New), ErrNotReplaceable)
	}
	var reported string
	var denySeq int64
	if err := tx.QueryRow(`SELECT since FROM deny WHERE card = ?`, req.Old).Scan(&reported); err != nil {
		return r, err
	}
	if err := tx.QueryRow(`SELECT coalesce(max(seq), 0) FROM changes WHERE kind = 'deny' AND card = ? AND denied = 1`, req.Old).Scan(&denySeq); err != nil {
		return r, err
	}
	balance, err := bookBalance(tx, old)
	if err != nil {
		return r, err
	}
	if err := checkNewCardCap(tx, req.New, balance); err != nil {
		return r, err
	}
	until := now.Add(settle)
	if _, err := tx.Exec(`INSERT INTO replacements (old, new, reported, deny_seq, replaced, settle_until, state, reported_fen, actor, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, req.Old, req.New, reported, denySeq, dbTime(now), dbTime(until), replaceSettling,
		balance, actor, req.Reason); err != nil {
		return r, err
	}
	detail := fmt.Sprintf("replaced by card %s: balance known %s, carried once the settle window ends by %s, less the purchases uploaded meanwhile",
		req.New, money.Format(balance), until.UTC().Format(time.RFC3339))
	if req.Reason != "" {
		detail += "; " + req.Reason
	}
	if err := addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventReplaced, Card: req.Old, AmountFen: &balance, Detail: detail}); err != nil {
		return r, err
	}
	if err := addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventReplacement, Card: req.New,
		Detail: "replaces lost card " + req.Old}); err != nil {
		return r, err
	}
	r, _, err = replacementOf(tx, req.Old)
	return r, err
}

// checkNewCard refuses a card that cannot receive a replaced balance.
func checkNewCard(tx *sql.Tx, number string) error {
	c, err := card(tx, number)
	if err != nil {
		return err
	}
	if c.Kind != CardEPurse {
		return fmt.Errorf("card %s is an M1 wallet: a replacement is an e-purse card: %w", redact.CardNumber(number), ErrNotReplaceable)
	}
	if denied, reason, err := denyState(tx, number); err != nil {
		return err
	} else if denied {
		return fmt.Errorf("card %s is on the deny list (%s): %w", redact.CardNumber(number), reason, ErrNotReplaceable)
	}
	if prev, found, err := replacementOf(tx, number); err != nil {
		return err
	} else if found {
		return fmt.Errorf("card %s is the replacement of card %s already: %w", redact.CardNumber(number), redact.CardNumber(prev.Old), ErrExists)
	}
	return nil
}

// checkNewCardCap refuses a new card whose product cannot hold the balance
// carried (at most carried) on top of what the card holds: the credit
// would wait at every tap, refused by the authorization's cap check.
func checkNewCardCap(tx *sql.Tx, number string, carried int64) error {
	c, err := card(tx, number)
	if err != nil {
		return err
	}
	held, err := bookBalance(tx, c)
	if err != nil {
		return err
	}
	p, err := cardProduct(tx, number)
	if err != nil {
		return err
	}
	if held+carried > p.CapFen {
		return fmt.Errorf("card %s holds %s and would receive up to %s, over its %s product's cap of %s: move it to a product that holds it ('cardhost card product --card N --set P'): %w",
			redact.CardNumber(number), money.Format(held), money.Format(carried), p.Name, money.Format(p.CapFen), ErrNotReplaceable)
	}
	return nil
}

// SettleReplacements settles every replacement whose settle window ended
// by now or whose balance is certain (see the top of this file): one
// credit of the old card's book balance to the new card. Each settles in
// its own transaction under the old card's lock, at most once (its state
// and the credit's unique key). It returns a line per replacement settled
// and, apart, the alarms the reconciliation of the old cards raised.
func (s *Store) SettleReplacements(ctx context.Context, now time.Time) (settled, alarms []string, err error) {
	rows, err := s.db.QueryContext(ctx, `SELECT old FROM replacements WHERE state = ? ORDER BY settle_until`, replaceSettling)
	olds, err := scanAll(rows, err, func(sc interface{ Scan(...any) error }) (string, error) {
		var o string
		return o, sc.Scan(&o)
	})
	if err != nil {
		return nil, nil, err
	}
	for _, old := range olds {
		var line string
		var raised []string
		err := s.inCardTx(ctx, old, func(tx *sql.Tx) (err error) {
			line, raised, err = settleReplacement(tx, old, now)
			return err
		})
		if err != nil {
			return settled, alarms, fmt.Errorf("replacement of card %s: %w", redact.CardNumber(old), err)
		}
		alarms = append(alarms, raised...)
		if line != "" {
			settled = append(settled, line)
		}
	}
	return settled, alarms, nil
}

// settleReplacement settles old's replacement if it is due, in tx under
// old's lock. The old card's rows not yet in its books are booked first,
// so the balance carried is the books' latest. It returns a line when it
// settled, and the alarms that booking raised.
func settleReplacement(tx *sql.Tx, old string, now time.Time) (settled string, alarms []string, err error) {
	r, found, err := replacementOf(tx, old)
	if err != nil || !found || r.Old != old || r.State != replaceSettling {
		return "", nil, err
	}
	if alarms, err = reconcileCard(tx, old, now); err != nil {
		return "", nil, err
	}
	why := settledWindow
	if until, _ := time.Parse(time.RFC3339, r.SettleUntil); now.Before(until) {
		certain, err := balanceCertain(tx, old)
		if err != nil || !certain {
			return "", alarms, err
		}
		why = settledCertain
	}
	c, err := card(tx, old)
	if err != nil {
		return "", nil, err
	}
	balance, err := bookBalance(tx, c)
	if err != nil {
		return "", nil, err
	}
	var creditID any // NULL: nothing to carry
	if balance > 0 {
		if balance > epurse.MaxAmount {
			return "", nil, fmt.Errorf("book balance %s is more than a card holds", money.Format(balance))
		}
		id, err := newCreditID()
		if err != nil {
			return "", nil, err
		}
		// The carried balance is the holder's own money, already on a
		// card once: it does not wait for the approval threshold's
		// second operator (approval.go), and its note says so.
		note := fmt.Sprintf("balance of lost card %s carried over (replacement; the holder's own money, exempt from approval)", redact.CardNumber(old))
		if err := insertCredit(tx, id, r.New, balance, note, replaceActor, now); err != nil {
			return "", nil, err
		}
		creditID = id
	}
	res, err := tx.Exec(`UPDATE replacements SET state = ?, credit = ?, credited_fen = ?, settled = ?, settled_why = ? WHERE old = ? AND state = ?`,
		replaceSettled, creditID, balance, dbTime(now), why, old, replaceSettling)
	if err != nil {
		return "", nil, err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return "", nil, fmt.Errorf("replacement settled twice (%d rows, %v)", n, err)
	}
	detail := fmt.Sprintf("settled (%s): %s carried to card %s (known %s at the replacement; purchases uploaded since %s)",
		why, money.Format(balance), r.New, money.Format(r.ReportedFen), money.Format(r.ReportedFen-balance))
	if err := addLedger(tx, ledgerEntry{Time: now, Actor: replaceActor, Event: EventReplaceSettled, Card: old, AmountFen: &balance, Detail: detail}); err != nil {
		return "", nil, err
	}
	return "card " + redact.CardNumber(old) + " " + detail, alarms, nil
}

// replaceActor names the host's replacement settlement in the ledger.
const replaceActor = "host replacement"

// balanceCertain reports whether no terminal can still upload a row of
// old the host lacks: every registered terminal's last pull came with a
// cursor past the change that denied old (it had applied the deny, so it
// takes no more sales of the card), a heartbeat reached the host after
// that pull with an empty upload queue, and none of old's rows is in
// doubt.
func balanceCertain(tx *sql.Tx, old string) (bool, error) {
	var lagging, doubts int
	if err := tx.QueryRow(`SELECT count(*) FROM terminals t, replacements r WHERE r.old = ? AND NOT (
			coalesce(t.pulled_seq, 0) >= r.deny_seq AND coalesce(t.last_seen, '') > coalesce(t.pulled_at, '~') AND coalesce(t.queue_depth, 1) = 0)`,
		old).Scan(&lagging); err != nil || lagging > 0 {
		return false, err
	}
	if err := tx.QueryRow(`SELECT count(*) FROM recon_moves WHERE card = ? AND state = ?`, old, rowUnknown).Scan(&doubts); err != nil {
		return false, err
	}
	return doubts == 0, nil
}

// replacementLate accounts the old card's rows that reached the books
// after its replacement settled: what they took off the balance carried
// (the credit less the books' balance now, less the debt recorded
// already) is owed by the replacement, a ledger line on the new card and
// an alarm. It runs in tx under number's lock, after its reconciliation.
func replacementLate(tx *sql.Tx, number string, now time.Time) ([]string, error) {
	r, found, err := replacementOf(tx, number)
	if err != nil || !found || r.Old != number || r.State != replaceSettled {
		return nil, err
	}
	c, err := card(tx, number)
	if err != nil {
		return nil, err
	}
	balance, err := bookBalance(tx, c)
	if err != nil {
		return nil, err
	}
	owed := r.CreditedFen - balance - r.DebtFen
	if owed <= 0 {
		return nil, nil
	}
	if _, err := tx.Exec(`UPDATE replacements SET debt_fen = debt_fen + ? WHERE old = ?`, owed, number); err != nil {
		return nil, err
	}
	neg := -owed
	detail := fmt.Sprintf("lost card %s: rows uploaded after its balance was carried to card %s (credit %s, %s) took %s more off it: owed by the replacement",
		redact.CardNumber(number), redact.CardNumber(r.New), r.Credit, money.Format(r.CreditedFen), money.Format(owed))
	if err := addLedger(tx, ledgerEntry{Time: now, Actor: reconActor, Event: EventReplacementDebt, Card: r.New, AmountFen: &neg, Detail: detail}); err != nil {
		return nil, err
	}
	if _, err := insertAlarm(tx, r.New, detail, now); err != nil {
		return nil, err
	}
	return []string{detail}, nil
}

// notePull records the cursor a terminal pulled from: the changes it has
// applied, the half of balanceCertain's proof a heartbeat does not give.
func (s *Store) notePull(ctx context.Context, terminal string, cursor int64, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE terminals SET pulled_seq = ?, pulled_at = ? WHERE id = ?`, cursor, dbTime(now), terminal)
	return err
}

// settleReplacements runs SettleReplacements for a terminal's heartbeat,
// logging what it did: the heartbeat is answered whatever happens.
func (h *Handler) settleReplacements(ctx context.Context, term string, now time.Time) {
	settled, alarms, err := h.store.SettleReplacements(ctx, now)
	for _, l := range settled {
		h.log.Info("replacement settled", "terminal", term, "detail", l)
	}
	for _, a := range alarms {
		h.log.Error("ALARM: reconciliation", "detail", a)
	}
	if err != nil {
		h.log.Warn("replacement settlement after a heartbeat failed; the minute's sweep tries again", "terminal", term, "err", err)
	}
}
