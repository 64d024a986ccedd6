package host

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
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
	if t := req.PSAMTerminal; t != "" && (len(t) != 12 || strings.Trim(t, "0123456789ABCDEF") != "") {
		return fmt.Sprintf("psam_terminal %q: want the PSAM's 6-byte terminal id as 12 upper-case hex digits", t)
	}
	return ""
}

// saleProver recomputes a purchase's TAC from the card's key (Keys).
type saleProver interface {
	purchaseTAC(serial [10]byte, amount int64, tx epurse.TxType, psamTerm [6]byte, termSerial uint32, when time.Time) ([4]byte, error)
}

// voidOutcome is what refund did: made the credit (false for the same
// void again), or refused a sale whose TAC does not verify, with the alarm
// it wrote to the card's ledger.
type voidOutcome struct {
	made  bool
	alarm string
}

// refund makes the refund credit of a void whose sale the host holds
// (stored by the caller), or answers the one it made for the same void
// before. See the comment at the top of this file for the rules; the
// sale's proof is checked with p (provedSale).
func (s *Store) refund(ctx context.Context, terminal string, req hostapi.VoidRequest, p saleProver, now time.Time) (hostapi.VoidResponse, voidOutcome, error) {
	var resp hostapi.VoidResponse
	var out voidOutcome
	err := s.inCardTx(ctx, req.Sale.Card, func(tx *sql.Tx) error {
		out = voidOutcome{}
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
		if reason := unproven(sale, req.PSAMTerminal); reason != "" {
			return conflict(hostapi.CodeNotVoidable, "no proof of sale %s: %s", sale.ID, reason)
		}
		// The TAC does not cover the counter: the same proved debit under
		// another row id or counter is the same sale (one PSAM serial, one
		// TAC), refunded once.
		var prior string
		err = tx.QueryRow(`SELECT r.terminal || ' ' || r.void_id FROM refunds r WHERE (r.terminal = ? AND r.sale_id = ?)
			OR (r.card = ? AND r.purse = ? AND r.counter = ? AND r.purse IN ('EP', 'ED'))
			OR (r.card = ? AND r.sale_tac = ? AND EXISTS (SELECT 1 FROM journal j
				WHERE j.terminal = r.terminal AND j.id = r.sale_id AND j.term_serial = ?))`,
			terminal, sale.ID, sale.Card, sale.Purse, int64(sale.Counter), sale.Card, sale.TAC, int64(sale.TermSerial)).Scan(&prior)
		switch {
		case err == nil:
			return conflict(hostapi.CodeSaleVoided, "sale %s was refunded already, by void %s", sale.ID, prior)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		c, err := card(tx, sale.Card)
		if errors.Is(err, ErrNotFound) {
			return notFound("card %s was not issued by this host: there is nothing to refund it onto", redact.CardNumber(sale.Card))
		} else if err != nil {
			return err
		}
		actor := terminalActor(terminal)
		if reason, err := provedSale(p, c, sale, req.PSAMTerminal); err != nil {
			return err
		} else if reason != "" {
			// Committed with nothing else: a person must look at a
			// terminal that sends sales the card did not make.
			out.alarm = reason
			var check string
			if err := tx.QueryRow(`SELECT tac_check FROM journal WHERE terminal = ? AND id = ?`, terminal, sale.ID).Scan(&check); err != nil || check == tacBad {
				return err // the sale's upload raised the alarm already (checkRowTACOnce)
			}
			_, err := journalAlarm(tx, sale, terminal, actor, "voided with a TAC that does not verify", reason, now)
			return err
		}
		id, err := newCreditID()
		if err != nil {
			return err
		}
		id = "rf-" + strings.TrimPrefix(id, "cr-")
		note := fmt.Sprintf("%s of sale %s TAC %s", NoteRefund, sale.ID, sale.TAC)
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
		out.made = true
		return nil
	})
	if err == nil && out.alarm != "" {
		err = conflict(hostapi.CodeNotVoidable, "%s", out.alarm)
	}
	return resp, out, err
}

// unproven says why a held sale has no proof the host can check, or "":
// the host refunds only a debit it can show the card made (see
// hostapi.VoidRequest). An M1 wallet's purchase is an offline write of a
// value block, with nothing the card signs; refunding it on the terminal's
// word alone would let a terminal with a stolen secret mint credits.
func unproven(sale hostapi.JournalRow, psamTerm string) string {
	switch {
	case sale.Purse != "EP" && sale.Purse != "ED":
		return fmt.Sprintf("a purse %q purchase (an M1 wallet's offline debit) has no TAC, and the host refunds only a sale the card's TAC proves", sale.Purse)
	case sale.TAC == "":
		return "the sale has no TAC (the card left before it gave one), and the host refunds only a sale the card's TAC proves"
	case psamTerm == "":
		return "the void carries no PSAM terminal id (the sale was journaled before cardd kept it), so the sale's TAC cannot be verified"
	}
	return ""
}

// provedSale recomputes the TAC card c gives for sale made at the PSAM of
// terminal id psamTerm, at the terminal's wall clock of the row's time,
// and says why it is not the sale's, or "". The caller checked unproven.
func provedSale(p saleProver, c Card, sale hostapi.JournalRow, psamTerm string) (string, error) {
	serial, err := c.serial()
	if err != nil {
		return "", err
	}
	purse, err := parsePurse(sale.Purse)
	if err != nil {
		return "", err
	}
	var term [6]byte
	if _, err := hex.Decode(term[:], []byte(psamTerm)); err != nil {
		return "", err // checkVoid checked it
	}
	tac, err := hex4("tac", sale.TAC)
	if err != nil {
		return "", err
	}
	when, err := time.Parse(time.RFC3339, sale.Time)
	if err != nil {
		return "", fmt.Errorf("sale %s: stored time %q: %w", sale.ID, sale.Time, err)
	}
	want, err := p.purchaseTAC(serial, sale.AmountFen, purse.PurchaseType(), term, sale.TermSerial, when)
	if err != nil {
		return "", fmt.Errorf("sale %s: %w", sale.ID, err)
	}
	if subtle.ConstantTimeCompare(want[:], tac[:]) != 1 {
		return fmt.Sprintf("the sale's TAC does not verify: TAC %s of sale %s (%s, %s purchase, PSAM %s, serial %d, at %s) is not the card's",
			sale.TAC, sale.ID, money.Format(sale.AmountFen), sale.Purse, psamTerm, sale.TermSerial, when.Format(hostapi.TimeLayout)), nil
	}
	return "", nil
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
	case hostapi.IsCloseID(sale.CreditID):
		// Its money is the card's refund due, paid at the desk: a refund
		// credit would pay it twice.
		return sale, conflict(hostapi.CodeNotVoidable, "row %s is the closing debit of card %s (销户), no sale: its refund is due at the desk", sale.ID, redact.CardNumber(sale.Card))
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
	resp, out, err := h.store.refund(ctx, term, req, h.rules.Keys, now)
	if out.alarm != "" {
		h.log.Error("ALARM: void refused: the sale's TAC does not verify", "terminal", term, "void", req.ID, "sale", req.Sale.ID,
			"card", redact.CardNumber(req.Sale.Card), "reason", out.alarm)
	}
	if err == nil && out.made {
		h.log.Info("sale voided: refund credit made", "terminal", term, "void", req.ID, "sale", req.Sale.ID,
			"card", redact.CardNumber(req.Sale.Card), "credit", resp.Credit.ID, "amount", money.Format(resp.Credit.AmountFen))
	}
	return resp, err
}
