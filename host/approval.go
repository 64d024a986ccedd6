package host

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
)

// A credit's approval (credits.approval): operators' four-eyes check on
// money going onto cards.
const (
	approvalAwaiting = "awaiting" // above the threshold, not approved yet: no terminal sees it
	approvalApproved = "approved" // a second operator approved it
)

// settingApproveAbove names the approval threshold in the settings table:
// decimal fen, "0" for none.
const settingApproveAbove = "approve_above_fen"

// ApprovalSetting is the host's approval threshold: a credit an operator
// adds for more than AboveFen waits for a second operator's approval.
// AboveFen 0 is no threshold (nothing waits).
type ApprovalSetting struct {
	AboveFen int64  `json:"above_fen"`
	Actor    string `json:"actor,omitempty"`   // who set it
	Updated  string `json:"updated,omitempty"` // RFC 3339
}

// approvalThreshold reads the threshold in q; 0 when none was ever set.
func approvalThreshold(q querier) (int64, error) {
	s, err := readApprovalSetting(q)
	return s.AboveFen, err
}

func readApprovalSetting(q querier) (ApprovalSetting, error) {
	var s ApprovalSetting
	var value string
	err := q.QueryRow(`SELECT value, actor, updated FROM settings WHERE name = ?`, settingApproveAbove).Scan(&value, &s.Actor, &s.Updated)
	if errors.Is(err, sql.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if s.AboveFen, err = strconv.ParseInt(value, 10, 64); err != nil || s.AboveFen < 0 {
		// Only SetApprovalThreshold writes it: anything else is damage,
		// and guessing a threshold would let money past the check.
		return s, fmt.Errorf("setting %s = %q is not an amount in fen", settingApproveAbove, value)
	}
	s.Updated = rfc3339(s.Updated)
	return s, nil
}

// ApprovalThreshold returns the host's approval threshold and who set it.
func (s *Store) ApprovalThreshold(ctx context.Context) (ApprovalSetting, error) {
	return readApprovalSetting(s.db)
}

// SetApprovalThreshold sets the approval threshold for the credits added
// from now on; 0 removes it. Credits already awaiting approval still wait.
func (s *Store) SetApprovalThreshold(ctx context.Context, aboveFen int64, actor string, now time.Time) error {
	if aboveFen < 0 || aboveFen > epurse.MaxAmount {
		return fmt.Errorf("approval threshold %s: want 0.00 (none) to %s", money.Format(aboveFen), money.Format(epurse.MaxAmount))
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO settings (name, value, updated, actor) VALUES (?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated = excluded.updated, actor = excluded.actor`,
			settingApproveAbove, strconv.FormatInt(aboveFen, 10), dbTime(now), actor)
		return err
	})
}

// insertAwaiting writes a credit above the approval threshold: pending,
// awaiting approval, with no change in the feed (terminals learn of it
// only once approved), and its ledger lines.
func insertAwaiting(tx *sql.Tx, id, number string, amountFen int64, note, actor string, above int64, now time.Time) error {
	if _, err := tx.Exec(`INSERT INTO credits (id, card, amount_fen, note, state, created, approval) VALUES (?, ?, ?, ?, 'pending', ?, 'awaiting')`,
		id, number, amountFen, note, dbTime(now)); err != nil {
		return err
	}
	if err := addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventAdded, Credit: id, Card: number, AmountFen: &amountFen, Detail: note}); err != nil {
		return err
	}
	return addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventAwaiting, Credit: id, Card: number, AmountFen: &amountFen,
		Detail: fmt.Sprintf("above the approval threshold of %s: no terminal can load it until another operator approves it", money.Format(above))})
}

// SelfApprovalError refuses an operator's approval of a credit they added
// themselves: the check is a second person's.
type SelfApprovalError struct {
	Credit, Operator string
}

func (e *SelfApprovalError) Error() string {
	return fmt.Sprintf("credit %s was added by %s, who cannot approve it: another operator must", e.Credit, e.Operator)
}

// ApproveCredit approves a credit awaiting approval: it enters the change
// feed as a new pending credit does, and terminals may load it. The
// approver must not be the operator who added it (*SelfApprovalError);
// the ledger names both, with the approver's note.
func (s *Store) ApproveCredit(ctx context.Context, id, actor, note string, now time.Time) error {
	if err := checkReason(note); err != nil {
		return err
	}
	return s.inCardTx(ctx, s.cardOfCredit(ctx, id), func(tx *sql.Tx) error {
		c, err := credit(tx, id)
		if err != nil {
			return err
		}
		if c.State != hostapi.CreditPending {
			return fmt.Errorf("credit %s is %s: there is nothing to approve", id, c.State)
		}
		switch c.Approval {
		case approvalApproved:
			return fmt.Errorf("credit %s is approved already", id)
		case "":
			return fmt.Errorf("credit %s needs no approval: it was at most the threshold when added, and terminals may load it", id)
		}
		adder, err := creditAdder(tx, id)
		if err != nil {
			return err
		}
		if adder == actor {
			return &SelfApprovalError{Credit: id, Operator: adder}
		}
		if _, err := tx.Exec(`UPDATE credits SET approval = 'approved' WHERE id = ? AND approval = 'awaiting'`, id); err != nil {
			return err
		}
		if err := addChange(tx, id, hostapi.CreditPending, c.Card, now); err != nil {
			return err
		}
		detail := "added by " + adder
		if note != "" {
			detail += "; " + note
		}
		if err := addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventApproved, Credit: id, Card: c.Card, AmountFen: &c.AmountFen, Detail: detail}); err != nil {
			return err
		}
		// Approved for a card closed meanwhile: it goes back with the refund.
		return refundPending(tx, c.Card, actor, now)
	})
}

// creditAdder is who added a credit, as its ledger line says.
func creditAdder(q querier, id string) (string, error) {
	var actor string
	err := q.QueryRow(`SELECT actor FROM ledger WHERE credit = ? AND event = ? ORDER BY id LIMIT 1`, id, EventAdded).Scan(&actor)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("credit %s has no 'added' line in the ledger: who added it is unknown, so it cannot be approved", id)
	}
	return actor, err
}

// checkReason refuses an operator's reason or note the ledger should not
// hold: not UTF-8, or longer than a credit's note may be.
func checkReason(reason string) error {
	if utf8.RuneCountInString(reason) > maxNoteLen || !utf8.ValidString(reason) {
		return fmt.Errorf("reason: want UTF-8 text of at most %d characters", maxNoteLen)
	}
	return nil
}

// CorrectCredit records that amountFen of a credit that reached the card
// (consumed) was put there by mistake: a correction line in the ledger,
// with the amount negative, the operator and the reason. It takes no money
// off the card (only the card's holder, paying at a terminal, can); it
// tells the books that this much is owed back. A credit's corrections
// never add up to more than its amount. amountFen 0 corrects what is left
// of it; the amount corrected is returned.
func (s *Store) CorrectCredit(ctx context.Context, id string, amountFen int64, actor, reason string, now time.Time) (int64, error) {
	if strings.TrimSpace(reason) == "" {
		return 0, errors.New("reason: a correction must say why")
	}
	if err := checkReason(reason); err != nil {
		return 0, err
	}
	if amountFen < 0 {
		return 0, fmt.Errorf("correction amount %s: want more than 0.00, or 0.00 for all that is left", money.Format(amountFen))
	}
	var corrected int64
	err := s.inCardTx(ctx, s.cardOfCredit(ctx, id), func(tx *sql.Tx) error {
		c, err := credit(tx, id)
		if err != nil {
			return err
		}
		if c.State != hostapi.CreditConsumed {
			return fmt.Errorf("credit %s is %s, not on the card: cancel it with 'cardhost credit cancel' "+
				"(once a terminal has reported the card's proof, if it is authorized)", id, c.State)
		}
		var done int64
		if err := tx.QueryRow(`SELECT coalesce(sum(amount_fen), 0) FROM ledger WHERE credit = ? AND event = ?`, id, EventCorrected).Scan(&done); err != nil {
			return err
		}
		left := c.AmountFen + done // corrections are negative
		corrected = amountFen
		if corrected == 0 {
			corrected = left
		}
		if left == 0 {
			return fmt.Errorf("credit %s (%s) is corrected in full already", id, money.Format(c.AmountFen))
		}
		if corrected > left {
			return fmt.Errorf("correction of %s: credit %s is %s, of which %s is left to correct", money.Format(corrected), id, money.Format(c.AmountFen), money.Format(left))
		}
		neg := -corrected
		return addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventCorrected, Credit: id, Card: c.Card, AmountFen: &neg, Detail: reason})
	})
	return corrected, err
}

// Credit returns one credit as operators see it (its approval among the
// rest); ErrNotFound when there is none.
func (s *Store) Credit(ctx context.Context, id string) (CreditInfo, error) {
	return credit(s.db, id)
}
