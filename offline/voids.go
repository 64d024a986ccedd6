package offline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
)

// A void (冲正) takes back a sale of this terminal: the cashier asks for it
// within a window after the sale, it is journaled here before anything
// else (one per sale: the table's UNIQUE sale_seq), and it is owed to the
// host, which makes it the refund credit of its sale. The refund reaches
// the card as any credit does (tap.Loader), so a void changes no card here.

// Void states.
const (
	// VoidOwed: journaled, not yet answered by the host.
	VoidOwed = "owed"
	// VoidRefunded: the host made the refund credit (Void.CreditID).
	VoidRefunded = "refunded"
	// VoidRefused: the host refused it for good (Void.HostReason); a
	// person must look.
	VoidRefused = "refused"
)

// Reasons RecordVoid refuses a void for, tested with errors.Is. Each is
// wrapped with the sale and the particulars.
var (
	// ErrVoided: the sale has a void already.
	ErrVoided = errors.New("sale already voided")
	// ErrVoidWindow: the sale is older than the void window.
	ErrVoidWindow = errors.New("sale outside the void window")
	// ErrNotVoidable: the row is not a sale that reached the card: not a
	// purchase, or one still in intent or unknown, or one that failed.
	ErrNotVoidable = errors.New("not a sale that can be voided")
	// ErrVoidAmount: the amount is above the sale's (or not above 0).
	ErrVoidAmount = errors.New("void amount not within the sale")
)

// Void is one void of a sale.
type Void struct {
	// ID is permanent and what the host sees: terminal id + "-V" + Seq.
	ID  string
	Seq int64
	// SaleID is the journal row of the sale voided.
	SaleID    string
	Card      string
	AmountFen int64 // the refund: at most the sale's amount
	Cashier   string
	State     string // Void* constant
	// CreditID is the host's refund credit, once State is VoidRefunded.
	CreditID string
	// HostReason is the host's code and reason, when VoidRefused.
	HostReason       string
	Created, Updated time.Time
}

// VoidRequest is what the cashier asks: which sale, how much, within which
// window.
type VoidRequest struct {
	// SaleID is the journal row of the sale; "" is the last sale of this
	// terminal (the newest purchase row that did not fail).
	SaleID string
	// AmountFen is the refund; 0 is the whole sale.
	AmountFen int64
	// Window is how old the sale may be, from its write-ahead to now.
	Window  time.Duration
	Cashier string
	// Receipt, when set, makes the void's receipt, queued in the same
	// transaction as the void: sale is the row voided.
	Receipt func(v Void, sale Row) (NewReceipt, error)
}

const voidCols = `seq, terminal, sale_seq, card, amount_fen, cashier, state, credit_id, host_reason, created, updated`

func voidID(terminal string, seq int64) string {
	return terminal + "-V" + strconv.FormatInt(seq, 10)
}

// parseVoidID splits a void id; ok is false for anything RecordVoid could
// not have made.
func parseVoidID(id string) (terminal string, seq int64, ok bool) {
	terminal, num, found := strings.Cut(id, "-V")
	if !found {
		return "", 0, false
	}
	if _, s, ok := parseID(terminal + "-" + num); ok {
		return terminal, s, true
	}
	return "", 0, false
}

func scanVoid(sc scanner) (Void, error) {
	var v Void
	var term string
	var saleSeq, created, updated int64
	if err := sc.Scan(&v.Seq, &term, &saleSeq, &v.Card, &v.AmountFen, &v.Cashier, &v.State, &v.CreditID, &v.HostReason, &created, &updated); err != nil {
		return Void{}, err
	}
	v.ID, v.SaleID = voidID(term, v.Seq), rowID(term, saleSeq)
	v.Created, v.Updated = time.Unix(0, created), time.Unix(0, updated)
	return v, nil
}

// RecordVoid journals a void of one sale of this terminal and returns it,
// durably committed, with its receipt queued (req.Receipt). It refuses,
// changing nothing: a sale voided already (ErrVoided), older than
// req.Window (ErrVoidWindow), not a purchase or not done (ErrNotVoidable),
// an amount above the sale's (ErrVoidAmount), a row that does not exist
// (ErrNotFound). The check and the insert are one transaction, so two
// voids of one sale asked at once make one.
func (s *Store) RecordVoid(ctx context.Context, req VoidRequest) (Void, error) {
	if req.AmountFen < 0 {
		return Void{}, fmt.Errorf("offline: void: %w: amount %s is below 0", ErrVoidAmount, money.Format(req.AmountFen))
	}
	var v Void
	err := s.write(ctx, "record void", func(tx *sql.Tx) error {
		sale, err := s.saleToVoid(ctx, tx, req.SaleID)
		if err != nil {
			return err
		}
		now := s.now()
		if err := checkVoidable(sale, req, now); err != nil {
			return err
		}
		var prior string
		err = tx.QueryRowContext(ctx, `SELECT terminal || '-V' || seq FROM voids WHERE sale_seq = ?`, sale.Seq).Scan(&prior)
		switch {
		case err == nil:
			return fmt.Errorf("%w: sale %s was voided by %s", ErrVoided, sale.ID, prior)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		amount := req.AmountFen
		if amount == 0 {
			amount = sale.AmountFen
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO voids (terminal, sale_seq, card, amount_fen, cashier, state, created, updated)
			VALUES (?, ?, ?, ?, ?, 'owed', ?, ?)`, s.terminal, sale.Seq, sale.Card, amount, req.Cashier, now.UnixNano(), now.UnixNano())
		if err != nil {
			return err
		}
		seq, err := res.LastInsertId()
		if err != nil {
			return err
		}
		v = Void{ID: voidID(s.terminal, seq), Seq: seq, SaleID: sale.ID, Card: sale.Card, AmountFen: amount,
			Cashier: req.Cashier, State: VoidOwed, Created: now, Updated: now}
		if req.Receipt == nil {
			return nil
		}
		r, err := req.Receipt(v, sale)
		if err != nil {
			return fmt.Errorf("void receipt: %w", err)
		}
		if err := r.check(); err != nil {
			return err
		}
		return insertReceipt(ctx, tx, 0, false, r, now.UnixNano())
	})
	if err != nil {
		return Void{}, err
	}
	return v, nil
}

// saleToVoid reads the sale a void names, or the last sale for "".
func (s *Store) saleToVoid(ctx context.Context, tx *sql.Tx, id string) (Row, error) {
	var sc *sql.Row
	if id == "" {
		sc = tx.QueryRowContext(ctx, `SELECT `+rowCols+` FROM journal WHERE kind = 'purchase' AND state <> 'failed'
			ORDER BY seq DESC LIMIT 1`)
	} else {
		term, seq, ok := parseID(id)
		if !ok || term != s.terminal {
			return Row{}, fmt.Errorf("%w: %q is not a journal row of this terminal", ErrNotFound, id)
		}
		sc = tx.QueryRowContext(ctx, `SELECT `+rowCols+` FROM journal WHERE seq = ? AND terminal = ?`, seq, term)
	}
	r, err := scanRow(sc)
	switch {
	case errors.Is(err, sql.ErrNoRows) && id == "":
		return Row{}, fmt.Errorf("%w: this terminal has no sale to void", ErrNotFound)
	case errors.Is(err, sql.ErrNoRows):
		return Row{}, fmt.Errorf("%w: no journal row %s", ErrNotFound, id)
	}
	return r, err
}

// checkVoidable says why sale cannot be voided as req asks at now, or nil.
func checkVoidable(sale Row, req VoidRequest, now time.Time) error {
	switch {
	case sale.Kind != KindPurchase:
		return fmt.Errorf("%w: row %s is a %s, not a sale", ErrNotVoidable, sale.ID, sale.Kind)
	case hostapi.IsCloseID(sale.CreditID):
		// Its money is the card's refund due at the host: a void would
		// owe it a second time.
		return fmt.Errorf("%w: row %s is the closing debit of a card (销户), not a sale: its refund is due at the host's desk", ErrNotVoidable, sale.ID)
	case sale.State != StateDone:
		return fmt.Errorf("%w: sale %s is %s: only a sale the card answered can be voided", ErrNotVoidable, sale.ID, sale.State)
	case sale.TAC == "" || sale.PSAMTerminal == "":
		// The host refunds only a sale whose TAC it can verify (an M1
		// wallet's debit has none; a card may leave before GET TRANSACTION
		// PROVE; a sale journaled before rows kept the PSAM's id lacks it):
		// journaled here, such a void would only be refused there.
		return fmt.Errorf("%w: sale %s has no proof the host can check (its TAC and PSAM): it cannot be refunded, pay it back by other means", ErrNotVoidable, sale.ID)
	case now.Sub(sale.Created) > req.Window:
		return fmt.Errorf("%w: sale %s was made %s ago, the window is %s", ErrVoidWindow, sale.ID,
			now.Sub(sale.Created).Round(time.Second), req.Window)
	case req.AmountFen > sale.AmountFen:
		return fmt.Errorf("%w: %s is above the sale's %s", ErrVoidAmount, money.Format(req.AmountFen), money.Format(sale.AmountFen))
	}
	return nil
}

// GetVoid returns the void with the given id, or an error wrapping
// ErrNotFound.
func (s *Store) GetVoid(ctx context.Context, id string) (Void, error) {
	term, seq, ok := parseVoidID(id)
	if !ok {
		return Void{}, fmt.Errorf("offline: get void %q: %w: not a void id", id, ErrNotFound)
	}
	v, err := scanVoid(s.db.QueryRowContext(ctx, `SELECT `+voidCols+` FROM voids WHERE seq = ? AND terminal = ?`, seq, term))
	if errors.Is(err, sql.ErrNoRows) {
		return Void{}, fmt.Errorf("offline: get void %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Void{}, fmt.Errorf("offline: get void %s: %w", id, err)
	}
	return v, nil
}

// OwedVoids returns up to limit voids the host has not answered, oldest
// first.
func (s *Store) OwedVoids(ctx context.Context, limit int) ([]Void, error) {
	if err := checkLimit(limit); err != nil {
		return nil, fmt.Errorf("offline: owed voids: %w", err)
	}
	out, err := queryAll(ctx, s.db, scanVoid, `SELECT `+voidCols+` FROM voids WHERE state = 'owed' ORDER BY seq LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("offline: owed voids: %w", err)
	}
	return out, nil
}

// VoidRefunded records the host's refund credit for void id. The same
// answer again is a no-op; another credit for a refunded void, or any
// answer to a refused one, is ErrFinal.
func (s *Store) VoidRefunded(ctx context.Context, id, credit string) error {
	if credit == "" {
		return fmt.Errorf("offline: void %s refunded: empty credit id", id)
	}
	return s.answerVoid(ctx, id, VoidRefunded, credit, "")
}

// VoidRefusedByHost records that the host refused void id for good, with
// its code and reason: the void is kept, not sent again, and shown to the
// operator.
func (s *Store) VoidRefusedByHost(ctx context.Context, id, reason string) error {
	return s.answerVoid(ctx, id, VoidRefused, "", reason)
}

func (s *Store) answerVoid(ctx context.Context, id, state, credit, reason string) error {
	what := fmt.Sprintf("void %s %s", id, state)
	term, seq, ok := parseVoidID(id)
	if !ok {
		return fmt.Errorf("offline: %s: %w: not a void id", what, ErrNotFound)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	return s.write(ctx, what, func(tx *sql.Tx) error {
		var cur, curCredit string
		err := tx.QueryRowContext(ctx, `SELECT state, credit_id FROM voids WHERE seq = ? AND terminal = ?`, seq, term).Scan(&cur, &curCredit)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		switch {
		case cur == state && curCredit == credit:
			return nil
		case cur != VoidOwed:
			return fmt.Errorf("%w: void is %s (credit %q)", ErrFinal, cur, curCredit)
		}
		_, err = tx.ExecContext(ctx, `UPDATE voids SET state = ?, credit_id = ?, host_reason = ?, updated = ? WHERE seq = ?`,
			state, credit, reason, s.now().UnixNano(), seq)
		return err
	})
}

// VoidsBetween counts the voids recorded from from (inclusive) to to
// (exclusive), whatever the host made of them, and sums their amounts: a
// shift's voids.
func (s *Store) VoidsBetween(ctx context.Context, from, to time.Time) (count int, sumFen int64, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(amount_fen), 0) FROM voids WHERE created >= ? AND created < ?`,
		from.UnixNano(), to.UnixNano()).Scan(&count, &sumFen)
	if err != nil {
		return 0, 0, fmt.Errorf("offline: voids from %s to %s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	return count, sumFen, nil
}
