package host

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cardd/cardd/apdu/mifare"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
)

// An M1 wallet (MIFARE Classic value block) has no cryptography of its own:
// whoever holds the sector's key B can raise its balance, and the card
// signs nothing. So the host cannot verify a load the way it verifies an
// e-purse TAC (DESIGN.md, money rule 4); it trusts the terminals' signed
// word, as it must, since they hold key B anyway. What the host still
// guarantees is that a credit is consumed once, and that every load can be
// settled from the wallet itself:
//
//   - The terminal journals a load, with a Ref of its own, before it asks
//     for it. Authorize binds a pending credit to that Ref at the wallet's
//     balance and transaction sequence (apdu/mifare State.Seq). The same
//     Ref again is a retry. A wallet has at most one open load: two loads
//     of one amount would leave it in the same state, and it could not tell
//     which happened.
//   - Complete names the Ref. Applied consumes the credit when the balance
//     after is the authorized balance plus the amount; not applied voids
//     the authorization (the credit stays pending). Any terminal may
//     complete it: the one that wrote it, from its journal, or any other
//     that read the wallet before changing it (the open load comes with the
//     wallet's credits, and balance and sequence tell whether it happened).
//   - What no terminal can tell (the wallet was changed elsewhere before a
//     terminal that knew the open load read it) an operator settles
//     (SettleM1) after reading the terminals' journals.

// RegisterM1 records an M1 wallet card by its UID (hex, 4, 7 or 10 bytes),
// so credits can be added for it. Its card id is hostapi.UIDCard of the
// UID. The card's balance lives on the card; the host registers no initial
// balance. A UID already registered is ErrExists.
func (s *Store) RegisterM1(ctx context.Context, uidHex, holder, actor string, now time.Time) (Card, error) {
	id := hostapi.UIDCardPrefix + strings.ToUpper(uidHex)
	if err := hostapi.CheckCardID(id); err != nil {
		return Card{}, fmt.Errorf("UID %q: want 4, 7 or 10 bytes in hex", uidHex)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := card(tx, id); err == nil {
			return fmt.Errorf("card %s: %w", id, ErrExists)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO cards (number, app_serial, holder, issued, initial_balance_fen, start_date, expiry_date, kind, product)
			VALUES (?, '', ?, ?, 0, '', '', ?, ?)`, id, holder, dbTime(now), CardM1, defaultProduct(holder)); err != nil {
			return err
		}
		return addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventIssued, Card: id, Detail: "M1 wallet registered by its UID"})
	})
	if err != nil {
		return Card{}, err
	}
	return s.Card(ctx, id)
}

// m1Load is one row of the m1_loads table.
type m1Load struct {
	ID         int64
	Credit     string
	Terminal   string
	Ref        string
	Seq        uint8
	OldBalance int64
	Amount     int64
	Time       string
	State      string // open, applied, void
}

const m1LoadColumns = `id, credit, terminal, ref, seq, old_balance_fen, amount_fen, time, state`

// queryM1Load returns the m1_loads row where says, nil when there is none.
func queryM1Load(q querier, where string, args ...any) (*m1Load, error) {
	var l m1Load
	err := q.QueryRow(`SELECT `+m1LoadColumns+` FROM m1_loads WHERE `+where, args...).
		Scan(&l.ID, &l.Credit, &l.Terminal, &l.Ref, &l.Seq, &l.OldBalance, &l.Amount, &l.Time, &l.State)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return &l, err
}

// openM1Load returns the credit's open authorization, if any.
func openM1Load(q querier, credit string) (*m1Load, error) {
	return queryM1Load(q, `credit = ? AND state = 'open'`, credit)
}

// m1Credit reads the credit a request names and checks it is the M1 card's.
func m1Credit(tx *sql.Tx, id, cardID string) (CreditInfo, error) {
	c, cd, err := creditOfCard(tx, id, cardID)
	if err != nil {
		return c, err
	}
	if cd.Kind != CardM1 {
		return c, badRequest("card %s is not an M1 wallet: its loads need the card's MAC1", redact.CardNumber(cardID))
	}
	return c, nil
}

// checkM1Request checks the fields every M1 load request shares.
func checkM1Request(cardID, ref string) error {
	if err := hostapi.CheckCardID(cardID); err != nil || !strings.HasPrefix(cardID, hostapi.UIDCardPrefix) {
		return badRequest("card %q: an M1 wallet is known by %s and its UID", cardID, hostapi.UIDCardPrefix)
	}
	if len(ref) != 16 || strings.Trim(ref, "0123456789ABCDEF") != "" {
		return badRequest("ref %q: want the terminal's 16 upper-case hex digits for this authorization", ref)
	}
	return nil
}

// authorizeM1 binds a pending credit to the calling terminal at the
// wallet's balance and sequence (see the comment at the top of this file).
// Like an e-purse authorization, it answers with the wallet's other pending
// credits, read in the same transaction.
func (r *Rules) authorizeM1(ctx context.Context, term string, req hostapi.LoadAuthorizeRequest, now time.Time) (hostapi.LoadAuthorizeResponse, error) {
	var resp hostapi.LoadAuthorizeResponse
	if err := checkM1Request(req.Card, req.Ref); err != nil {
		return resp, err
	}
	if req.MAC1 != "" || req.Random != "" {
		return resp, badRequest("purse %s carries no MAC1 or random: an M1 wallet has none", hostapi.PurseM1)
	}
	if req.OnlineCounter > 255 {
		return resp, badRequest("online_counter %d: an M1 wallet's sequence is 0 to 255", req.OnlineCounter)
	}
	if err := checkAmountField("amount_fen", req.AmountFen, 1); err != nil {
		return resp, err
	}
	if err := checkAmountField("old_balance_fen", req.OldBalanceFen, 0); err != nil {
		return resp, err
	}
	if _, err := parseWhen(req.Time, now); err != nil {
		return resp, err
	}
	actor := terminalActor(term)
	err := r.Store.inCardTx(ctx, req.Card, func(tx *sql.Tx) error {
		resp = hostapi.LoadAuthorizeResponse{} // a retry starts over
		c, err := m1Credit(tx, req.CreditID, req.Card)
		if err != nil {
			return err
		}
		if l, err := queryM1Load(tx, `credit = ? AND ref = ?`, c.ID, req.Ref); err != nil {
			return err
		} else if l != nil {
			if l.State != "open" || l.Terminal != term || l.OldBalance != req.OldBalanceFen || l.Amount != req.AmountFen || uint16(l.Seq) != req.OnlineCounter {
				return badRequest("ref %s of credit %s names another authorization (%s): a new one needs a new ref", req.Ref, c.ID, l.State)
			}
			resp.Time = l.Time // a retry: the same authorization
			resp.Credits, err = pendingOf(tx, c.Card, c.ID)
			return err
		}
		if err := checkLoadable(tx, c, req.AmountFen); err != nil {
			return err
		}
		limit := int64(mifare.MaxBalance)
		if r.BalanceCap > 0 && r.BalanceCap < limit {
			limit = r.BalanceCap
		}
		if err := checkProductLoad(tx, req.Card, req.OldBalanceFen, req.AmountFen, limit, now); err != nil {
			return err
		}
		// One open load per wallet: another load of the same amount at the
		// same balance would leave the wallet in the state this one's
		// would, and the wallet could no longer tell which happened.
		if open, err := queryM1Load(tx, `card = ? AND state = 'open'`, c.Card); err != nil {
			return err
		} else if open != nil {
			return conflict(hostapi.CodeCreditPending, "wallet %s has an open load (credit %s, terminal %s): the next terminal to read the wallet settles it",
				redact.CardNumber(c.Card), open.Credit, open.Terminal)
		}
		if _, err := tx.Exec(`INSERT INTO m1_loads (credit, card, terminal, ref, seq, old_balance_fen, amount_fen, time, state, created)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?)`, c.ID, c.Card, term, req.Ref, req.OnlineCounter, req.OldBalanceFen, req.AmountFen, req.Time, dbTime(now)); err != nil {
			return err
		}
		resp.Time = req.Time
		if resp.Credits, err = pendingOf(tx, c.Card, c.ID); err != nil {
			return err
		}
		amount := req.AmountFen
		return addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventAuthorized, Credit: c.ID, Card: c.Card, AmountFen: &amount,
			Detail: fmt.Sprintf("M1 wallet at a balance of %s, sequence %d (ref %s)", money.Format(req.OldBalanceFen), req.OnlineCounter, req.Ref)})
	})
	if err != nil {
		return hostapi.LoadAuthorizeResponse{}, err
	}
	return resp, nil
}

// completeM1 closes the authorization of an M1 credit that req.Ref names:
// applied consumes the credit when the balance after is the authorized
// balance plus the amount; not applied voids it (the credit stays
// pending). Any terminal may complete it: the one that wrote it, from its
// journal, or another that read the wallet before changing it
// (hostapi.CardCreditsResponse.M1Open). The same completion again gets the
// same answer and changes nothing; not applied for a Ref the host never
// authorized (the request never arrived) changes nothing either.
func (r *Rules) completeM1(ctx context.Context, term string, req hostapi.LoadCompleteRequest, now time.Time) (hostapi.LoadCompleteResponse, error) {
	var resp hostapi.LoadCompleteResponse
	if err := checkM1Request(req.Card, req.Ref); err != nil {
		return resp, err
	}
	if req.TAC != "" || req.ProbeMAC1 != "" || req.ProbeRandom != "" {
		return resp, badRequest("purse %s carries no TAC or probe: an M1 wallet has none", hostapi.PurseM1)
	}
	if err := checkAmountField("balance_fen", req.BalanceFen, 0); err != nil {
		return resp, err
	}
	actor := terminalActor(term)
	var alarm string
	err := r.Store.inCardTx(ctx, req.Card, func(tx *sql.Tx) error {
		resp, alarm = hostapi.LoadCompleteResponse{}, "" // a retry starts over
		c, err := m1Credit(tx, req.CreditID, req.Card)
		if err != nil {
			return err
		}
		l, err := queryM1Load(tx, `credit = ? AND ref = ?`, c.ID, req.Ref)
		if err != nil {
			return err
		}
		resp.State = c.State
		amount := int64(0)
		if l != nil {
			amount = l.Amount
		}
		ledgerAlarm := func(msg string) error {
			alarm = msg
			return addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventAlarm, Credit: c.ID, Card: c.Card, AmountFen: &amount, Detail: msg})
		}
		switch {
		case l == nil && req.NotApplied:
			return nil // never authorized: nothing to void
		case l == nil:
			return notFound("credit %s has no authorization %s", c.ID, req.Ref)
		case req.NotApplied && l.State == "open":
			if _, err := tx.Exec(`UPDATE m1_loads SET state = 'void', closed = ? WHERE id = ?`, dbTime(now), l.ID); err != nil {
				return err
			}
			return addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventVoided, Credit: c.ID, Card: c.Card, AmountFen: &amount,
				Detail: fmt.Sprintf("M1 wallet not loaded under ref %s of terminal %s (balance %s)", l.Ref, l.Terminal, money.Format(req.BalanceFen))})
		case req.NotApplied && l.State == "applied":
			// Settled applied (by an operator, most likely) and now a
			// terminal says the wallet never got it.
			if err := ledgerAlarm(fmt.Sprintf("credit %s: terminal %s reports ref %s not applied (balance %s), which had been settled applied",
				c.ID, term, l.Ref, money.Format(req.BalanceFen))); err != nil {
				return err
			}
			return nil
		case req.NotApplied:
			return nil // void already: the same report again
		case l.State == "applied":
			return nil // the same completion again
		}
		if want := l.OldBalance + l.Amount; req.BalanceFen != want {
			return conflict(hostapi.CodeCounterMismatch, "credit %s was authorized at a balance of %s, so the wallet should hold %s after it, not %s",
				c.ID, money.Format(l.OldBalance), money.Format(want), money.Format(req.BalanceFen))
		}
		if l.State == "void" {
			// The wallet got a load the host had released (an operator's
			// settle-m1, most likely). A person must look; unless the
			// credit went elsewhere since, it is on the wallet now and is
			// consumed so it is not loaded again.
			if err := ledgerAlarm(fmt.Sprintf("credit %s: terminal %s reports ref %s applied (balance %s), which had been voided",
				c.ID, term, l.Ref, money.Format(req.BalanceFen))); err != nil {
				return err
			}
			if other, err := openM1Load(tx, c.ID); err != nil || other != nil || c.State != hostapi.CreditPending {
				return err
			}
		}
		if c.State != hostapi.CreditPending {
			// Cancel refuses a credit with an open authorization, so this
			// is the records contradicting themselves.
			return conflict(hostapi.CodeCreditConsumed, "credit %s is %s", c.ID, c.State)
		}
		if err := consumeM1(tx, c, l, now); err != nil {
			return err
		}
		resp.State = hostapi.CreditConsumed
		return addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventConsumed, Credit: c.ID, Card: c.Card, AmountFen: &amount,
			Detail: fmt.Sprintf("new balance %s, loaded onto the M1 wallet by terminal %s at %s (ref %s; the terminals' word: the card signs nothing)",
				money.Format(req.BalanceFen), l.Terminal, l.Time, l.Ref)})
	})
	if err != nil {
		return hostapi.LoadCompleteResponse{}, err
	}
	if alarm != "" {
		r.alarm("an M1 terminal contradicts the host's records", req.Card, alarm)
	}
	return resp, nil
}

// openM1OfCard is the wallet's open load, for /v1/card/credits.
func openM1OfCard(q querier, cardID string) (*hostapi.M1OpenLoad, error) {
	l, err := queryM1Load(q, `card = ? AND state = 'open'`, cardID)
	if l == nil || err != nil {
		return nil, err
	}
	return &hostapi.M1OpenLoad{CreditID: l.Credit, Ref: l.Ref, Terminal: l.Terminal, OldBalanceFen: l.OldBalance, AmountFen: l.Amount, Seq: l.Seq}, nil
}

// SettleM1 closes the open authorization of an M1 credit by an operator's
// decision, for a load whose outcome no terminal can tell any more (its
// wallet was used elsewhere before it came back, or never came back). The
// operator reads the wallet's history (the journal rows of the terminals)
// and decides: applied consumes the credit, not applied voids the
// authorization and the credit is pending again. ErrNotFound when the
// credit has no open M1 authorization.
func (s *Store) SettleM1(ctx context.Context, creditID string, applied bool, actor string, now time.Time) error {
	return s.inCardTx(ctx, s.cardOfCredit(ctx, creditID), func(tx *sql.Tx) error {
		c, err := credit(tx, creditID)
		if err != nil {
			return err
		}
		l, err := openM1Load(tx, c.ID)
		if err != nil {
			return err
		}
		if l == nil {
			return fmt.Errorf("credit %s has no open M1 authorization: %w", c.ID, ErrNotFound)
		}
		amount := l.Amount
		if !applied {
			if _, err := tx.Exec(`UPDATE m1_loads SET state = 'void', closed = ? WHERE id = ?`, dbTime(now), l.ID); err != nil {
				return err
			}
			return addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventVoided, Credit: c.ID, Card: c.Card, AmountFen: &amount,
				Detail: fmt.Sprintf("settled by an operator: ref %s of terminal %s not applied", l.Ref, l.Terminal)})
		}
		if err := consumeM1(tx, c, l, now); err != nil {
			return err
		}
		return addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventConsumed, Credit: c.ID, Card: c.Card, AmountFen: &amount,
			Detail: fmt.Sprintf("settled by an operator: ref %s of terminal %s applied", l.Ref, l.Terminal)})
	})
}

// consumeM1 records load l of credit c applied: the authorization applied,
// the credit consumed by the terminal that wrote it, and the change fed to
// the terminals. The caller writes the ledger.
func consumeM1(tx *sql.Tx, c CreditInfo, l *m1Load, now time.Time) error {
	if _, err := tx.Exec(`UPDATE m1_loads SET state = 'applied', closed = ? WHERE id = ?`, dbTime(now), l.ID); err != nil {
		return err
	}
	if _, err := tx.Exec(`UPDATE credits SET state = 'consumed', consumed_at = ?, consumed_by = ? WHERE id = ?`, dbTime(now), l.Terminal, c.ID); err != nil {
		return err
	}
	return addChange(tx, c.ID, hostapi.CreditConsumed, c.Card, now)
}
