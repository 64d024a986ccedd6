package host

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
)

// A void (冲正) reaches the host as /v1/void with the sale's journal row:
// the row is stored as an upload of it would be (storeJournal: the same
// checks, idempotent, final once settled), and the refund is made against
// the row the host then holds, so a void that overtakes its sale's upload
// still ends right and a void cannot rewrite its sale. The refund is an
// ordinary pending credit for the sale's card, which the terminals load as
// any other (the pull lists it, a tap asks for it); its note names the
// sale and its TAC. One refund per sale: per the terminal's row (the
// refunds table's UNIQUE (terminal, sale_id)) and per the card's purchase
// counter (refunds_one_per_debit), so a second void, from any terminal,
// makes nothing. The void window is the terminal's rule: a void made
// offline within it arrives whenever the link is back.

// NoteRefund starts the note of a refund credit.
const NoteRefund = "refund"

// EventRefund is the ledger entry of a refund made for a voided sale,
// beside the refund credit's own "added".
const EventRefund = "refund"

// checkVoid says why a void request is malformed, or "".
func checkVoid(req hostapi.VoidRequest) string {
	if reason := checkRowID(hostapi.JournalRow{ID: req.ID}); reason != "" {
		return "void " + reason
	}
	if _, err := time.Parse(time.RFC3339, req.Time); err != nil {
		return fmt.Sprintf("time %q: want RFC 3339, like 2026-12-03T09:30:00+08:00", req.Time)
	}
	if req.AmountFen <= 0 {
		return fmt.Sprintf("amount_fen %d: a refund is above 0", req.AmountFen)
	}
	return ""
}

// refund makes the refund credit of a void whose sale the host holds
// (stored by the caller), or answers the one it made for the same void
// before. See the comment at the top of this file for the rules.
func (s *Store) refund(ctx context.Context, terminal string, req hostapi.VoidRequest, now time.Time) (hostapi.VoidResponse, bool, error) {
	var resp hostapi.VoidResponse
	var made bool
	err := s.inCardTx(ctx, req.Sale.Card, func(tx *sql.Tx) error {
		made = false
		var saleID, creditID string
		err := tx.QueryRow(`SELECT sale_id, credit FROM refunds WHERE terminal = ? AND void_id = ?`, terminal, req.ID).Scan(&saleID, &creditID)
		switch {
		case err == nil && saleID != req.Sale.ID:
			return conflict(hostapi.CodeNotVoidable, "void %s is of sale %s, not %s", req.ID, saleID, req.Sale.ID)
		case err == nil:
			c, err := credit(tx, creditID)
			resp.Credit = c.Credit
			return err
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		sale, err := heldSale(tx, terminal, req)
		if err != nil {
			return err
		}
		var prior string
		err = tx.QueryRow(`SELECT terminal || ' ' || void_id FROM refunds WHERE (terminal = ? AND sale_id = ?)
			OR (card = ? AND purse = ? AND counter = ? AND purse IN ('EP', 'ED'))`,
			terminal, sale.ID, sale.Card, sale.Purse, int64(sale.Counter)).Scan(&prior)
		switch {
		case err == nil:
			return conflict(hostapi.CodeSaleVoided, "sale %s was refunded already, by void %s", sale.ID, prior)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := card(tx, sale.Card); errors.Is(err, ErrNotFound) {
			return notFound("card %s was not issued by this host: there is nothing to refund it onto", redact.CardNumber(sale.Card))
		} else if err != nil {
			return err
		}
		id, err := newCreditID()
		if err != nil {
			return err
		}
		id = "rf-" + strings.TrimPrefix(id, "cr-")
		note := fmt.Sprintf("%s of sale %s TAC %s", NoteRefund, sale.ID, sale.TAC)
		actor := terminalActor(terminal)
		if err := insertCredit(tx, id, sale.Card, req.AmountFen, note, actor, now); err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO refunds (terminal, void_id, sale_id, card, purse, counter, sale_tac, sale_fen, amount_fen,
			credit, voided_at, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			terminal, req.ID, sale.ID, sale.Card, sale.Purse, int64(sale.Counter), sale.TAC, sale.AmountFen, req.AmountFen,
			id, req.Time, dbTime(now)); err != nil {
			return err
		}
		amount := req.AmountFen
		counter := sale.Counter
		if err := addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventRefund, Credit: id, Card: sale.Card,
			Counter: &counter, AmountFen: &amount, TAC: sale.TAC,
			Detail: fmt.Sprintf("void %s of sale %s (%s)", req.ID, sale.ID, money.Format(sale.AmountFen))}); err != nil {
			return err
		}
		resp.Credit = hostapi.Credit{ID: id, Card: sale.Card, AmountFen: req.AmountFen, Note: note,
			Created: now.UTC().Format(time.RFC3339), State: hostapi.CreditPending}
		made = true
		return nil
	})
	return resp, made, err
}

// heldSale is the sale a void names, as the host holds it from the
// terminal: a done purchase, the same card, amount and TAC as the void
// says, and at least the refund asked.
func heldSale(tx *sql.Tx, terminal string, req hostapi.VoidRequest) (hostapi.JournalRow, error) {
	get, err := tx.Prepare(storedRowQuery)
	if err != nil {
		return hostapi.JournalRow{}, err
	}
	defer get.Close()
	sale, found, err := storedRow(get, terminal, req.Sale.ID)
	switch {
	case err != nil:
		return sale, err
	case !found:
		return sale, conflict(hostapi.CodeNotVoidable, "sale %s of terminal %s is not held here", req.Sale.ID, terminal)
	case sale.Kind != rowPurchase || sale.State != rowDone:
		return sale, conflict(hostapi.CodeNotVoidable, "row %s is held as a %s %s: only a done purchase is voided", sale.ID, sale.State, sale.Kind)
	case sale.Card != req.Sale.Card || sale.AmountFen != req.Sale.AmountFen || sale.TAC != req.Sale.TAC:
		return sale, conflict(hostapi.CodeNotVoidable, "sale %s is held otherwise than the void says (%s)", sale.ID, rowDiff(sale, req.Sale))
	case req.AmountFen > sale.AmountFen:
		return sale, conflict(hostapi.CodeNotVoidable, "refund %s is above the sale's %s", money.Format(req.AmountFen), money.Format(sale.AmountFen))
	}
	return sale, nil
}

// Refund is a refund as the host's operators see it.
type Refund struct {
	Terminal, VoidID, SaleID, Card, Credit, SaleTAC string
	AmountFen, SaleFen                              int64
	Created                                         string // RFC 3339
}

// Refunds lists the refunds of a card, or of every card for "", oldest
// first.
func (s *Store) Refunds(ctx context.Context, number string) ([]Refund, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT terminal, void_id, sale_id, card, credit, sale_tac, amount_fen, sale_fen, created
		FROM refunds WHERE card = ? OR ? = '' ORDER BY created, credit`, number, number)
	return scanAll(rows, err, func(sc interface{ Scan(...any) error }) (Refund, error) {
		var r Refund
		err := sc.Scan(&r.Terminal, &r.VoidID, &r.SaleID, &r.Card, &r.Credit, &r.SaleTAC, &r.AmountFen, &r.SaleFen, &r.Created)
		r.Created = rfc3339(r.Created)
		return r, err
	})
}

// void answers /v1/void: the sale row stored as an upload would store it,
// then its refund (Store.refund).
func (h *Handler) void(ctx context.Context, term string, body []byte, now time.Time) (any, error) {
	var req hostapi.VoidRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if reason := checkVoid(req); reason != "" {
		return nil, badRequest("%s", reason)
	}
	res, err := h.store.storeJournal(ctx, term, []hostapi.JournalRow{req.Sale}, h.rowChecker(now))
	if err != nil {
		return nil, err
	}
	h.logJournal(term, res)
	if len(res.Refused) > 0 {
		rf := res.Refused[0]
		return nil, refuse(rf.Status, rf.Code, "the void's sale: %s", rf.Reason)
	}
	resp, made, err := h.store.refund(ctx, term, req, now)
	if err == nil && made {
		h.log.Info("sale voided: refund credit made", "terminal", term, "void", req.ID, "sale", req.Sale.ID,
			"card", redact.CardNumber(req.Sale.Card), "credit", resp.Credit.ID, "amount", money.Format(resp.Credit.AmountFen))
	}
	return resp, err
}
