package tap

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/mifare"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/redact"
	hostsync "github.com/cardd/cardd/sync"
)

// ApplyM1 is Apply for a MIFARE Classic wallet (card is its
// hostapi.UIDCard, st what Purchaser.ReadM1 read, before anything changed
// the wallet on this tap). The wallet signs nothing, so the rules take its
// balance and transaction sequence as its word, as the host takes the
// terminal's (host/m1.go):
//
//  1. an unfinished load of this terminal is settled from the wallet's
//     state (mifare.Change.Happened): the balance after it at the next
//     sequence means it happened, the balance before at the same sequence
//     means it did not; anything else (the wallet changed elsewhere since)
//     is left unknown. When the host answers, only the load it still holds
//     open is judged: one it closed (another terminal judged it, or an
//     operator) may have been followed by a load from the same state, and
//     is only marked settled (closeSettledM1);
//  2. the wallet's open load at the host, when this terminal's journal
//     does not settle it (another terminal's, or its own answered late),
//     is settled the same way and reported under its Ref;
//  3. a denied card gets nothing;
//  4. a credit is not asked for again while a load of it here is unsettled
//     (settledHere);
//  5. each pending credit is journaled with a Ref of this terminal's, then
//     authorized at the balance and sequence read, then written with an
//     increment of the value block (and its backup), then recorded done
//     and reported.
//
// What the wallet cannot settle (rule 1 or 2 left open) an operator
// settles at the host (cardhost credit settle-m1). The wallet must have
// been read in this session (its keys are loaded). The last load's commit
// and report are done before ApplyM1 returns; a Runner leaves them for
// after the card (applyM1).
func (l *Loader) ApplyM1(ctx context.Context, t apdu.Transmitter, w *mifare.Wallet, card string, st mifare.State) (LoadReport, error) {
	after := &afterCard{}
	rep, err := l.applyM1(ctx, t, w, card, st, after)
	if aerr := after.run(); err == nil {
		err = aerr
	}
	return rep, err
}

// applyM1 is ApplyM1 leaving the last load's commit and its completion to
// after: the card may leave once the value block and its backup are
// written (the wallet has no TAC to wait for; the write's 9000 is its
// word, as mifare.Wallet.Increment takes it).
func (l *Loader) applyM1(ctx context.Context, t apdu.Transmitter, w *mifare.Wallet, card string, st mifare.State, after *afterCard) (LoadReport, error) {
	rep := LoadReport{Balance: st.Balance}
	if denied, reason, err := l.Store.Denied(ctx, card); err != nil {
		return rep, err
	} else if denied {
		return rep, errors.Join(l.recoverM1(ctx, card, st, &rep, nil), fmt.Errorf("%w (%s)", ErrCardDenied, reason))
	}
	if l.Host == nil {
		return rep, l.recoverM1(ctx, card, st, &rep, nil)
	}
	// What this terminal owes the host about the wallet goes first: an
	// unreported completion keeps the wallet's load open there.
	owed, err := l.Store.CompletionsOwedOf(ctx, card)
	if err != nil {
		return rep, err
	}
	for _, row := range owed {
		l.complete(ctx, row.ID)
	}
	hctx, cancel := l.hostCtx(ctx)
	resp, err := l.Host.CardCredits(hctx, card)
	cancel()
	if err == nil {
		// Judge from the wallet only the row the host still holds open:
		// one it closed (another terminal judged it, or an operator) may
		// have been followed by a load from the same state.
		keep := func(r offline.Row) bool { return resp.M1Open != nil && resp.M1Open.Ref == r.MAC2 }
		n := len(rep.Recovered)
		if err := l.recoverM1(ctx, card, st, &rep, keep); err != nil {
			return rep, err
		}
		if len(rep.Recovered) > n {
			hctx, cancel := l.hostCtx(ctx)
			resp, err = l.Host.CardCredits(hctx, card)
			cancel()
		}
	} else if rerr := l.recoverM1(ctx, card, st, &rep, nil); rerr != nil {
		return rep, rerr
	}
	switch {
	case err == nil:
	case errors.Is(err, hostsync.ErrUnreachable):
		rep.HostOffline = true
		return rep, nil
	case hostsync.HasCode(err, hostapi.CodeNotFound):
		return rep, nil // a wallet the host never registered: it has no credits
	default:
		// The sale that may follow does not depend on the host.
		l.logger().Warn("asking the host for an M1 wallet's credits", "card", redact.CardNumber(card), "err", err)
		return rep, nil
	}
	open, err := l.settleOpenM1(ctx, card, st, resp.M1Open)
	if err != nil {
		return rep, err
	}
	if err := l.closeSettledM1(ctx, card, open); err != nil {
		return rep, err
	}
	cur := st
	return rep, l.loadAll(ctx, card, resp, &rep, func(c hostapi.Credit) (LoadResult, []hostapi.Credit, error) {
		res, err := l.loadOneM1(ctx, t, w, card, c, open, &cur, &rep, after)
		return res, nil, err
	})
}

// recoverM1 is rule 1 of ApplyM1.
func (l *Loader) recoverM1(ctx context.Context, card string, st mifare.State, rep *LoadReport, judge func(offline.Row) bool) error {
	rows, err := l.Store.Unresolved(ctx, card)
	if err != nil {
		return err
	}
	for _, row := range rows {
		if row.Kind != offline.KindLoad || row.Purse != hostapi.PurseM1 {
			continue
		}
		if judge != nil && !judge(row) {
			if row.State == offline.StateIntent {
				l.finish(ctx, row.ID, offline.StateUnknown, "", "the host holds no open load of it")
			}
			continue // closeSettledM1
		}
		rec := Recovery{JournalID: row.ID, CreditID: row.CreditID, AmountFen: row.AmountFen}
		ch := mifare.Change{Old: row.BalanceFen, New: row.BalanceFen + row.AmountFen, Seq: byte(row.Counter)}
		happened, err := ch.Happened(st)
		switch {
		case err != nil:
			// Changed elsewhere since: this terminal cannot tell. The
			// terminal that reads the wallet next may (rule 2), or an
			// operator.
			l.finish(ctx, row.ID, offline.StateUnknown, "", "left to the host: "+err.Error())
			continue
		case happened:
			row.State = offline.StateDone
			if err := l.storeDone(ctx, nil, row, "recovered: the wallet holds the balance after the load"); err != nil {
				return err
			}
			rec.Applied = true
		default:
			proof := hostsync.M1NotApplied{BalanceFen: st.Balance}
			if err := l.Store.FinishNotApplied(ctx, row.ID, proof.Encode(), "recovered: the wallet holds the balance before the load"); err != nil {
				return err
			}
		}
		l.logger().Info("unfinished M1 load resolved from the wallet", "card", redact.CardNumber(card), "journal", row.ID,
			"credit", row.CreditID, "applied", rec.Applied)
		rep.Recovered = append(rep.Recovered, rec)
		l.complete(ctx, row.ID)
	}
	return nil
}

// settleOpenM1 is rule 2 of ApplyM1: the wallet's open load at the host,
// when it is not this terminal's, is judged from st and reported under its
// Ref. It returns the load still open afterwards (nil when none).
func (l *Loader) settleOpenM1(ctx context.Context, card string, st mifare.State, open *hostapi.M1OpenLoad) (*hostapi.M1OpenLoad, error) {
	if open == nil {
		return nil, nil
	}
	rows, err := l.Store.LoadsOfCredit(ctx, open.CreditID)
	if err != nil {
		return open, err
	}
	for _, r := range rows {
		if r.MAC2 == open.Ref && r.Card == card && !r.CompletionReported {
			return open, nil // this terminal's: its journal settles it (rule 1)
		}
	}
	ch := mifare.Change{Old: open.OldBalanceFen, New: open.OldBalanceFen + open.AmountFen, Seq: open.Seq}
	happened, err := ch.Happened(st)
	if err != nil {
		l.logger().Warn("the wallet's open load of another terminal cannot be told from the wallet; an operator settles it",
			"card", redact.CardNumber(card), "credit", open.CreditID, "terminal", open.Terminal, "err", err)
		return open, nil
	}
	hctx, cancel := l.hostCtx(ctx)
	defer cancel()
	_, err = l.Host.CompleteLoad(hctx, hostapi.LoadCompleteRequest{CreditID: open.CreditID, Card: card, Purse: hostapi.PurseM1,
		Ref: open.Ref, BalanceFen: st.Balance, NotApplied: !happened})
	if err != nil {
		l.logger().Warn("reporting another terminal's M1 load from the wallet", "credit", open.CreditID, "applied", happened, "err", err)
		return open, nil
	}
	l.logger().Info("another terminal's M1 load settled from the wallet", "card", redact.CardNumber(card), "credit", open.CreditID,
		"terminal", open.Terminal, "applied", happened)
	return nil, nil
}

// closeSettledM1 marks this terminal's unknown M1 load rows of the wallet
// that the host no longer holds open (open, the wallet's open load, is
// another or none) as settled: the next terminal to read the wallet, or an
// operator, closed them. They are not judged from the wallet again, which
// after many more changes could match them by chance.
func (l *Loader) closeSettledM1(ctx context.Context, card string, open *hostapi.M1OpenLoad) error {
	rows, err := l.Store.Unresolved(ctx, card)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if r.Kind != offline.KindLoad || r.Purse != hostapi.PurseM1 || r.State != offline.StateUnknown || open != nil && open.Ref == r.MAC2 {
			continue
		}
		if err := l.Store.SettledElsewhere(ctx, r.ID); err != nil {
			return err
		}
		l.logger().Info("an M1 load left to the host was settled there", "card", redact.CardNumber(card), "journal", r.ID, "credit", r.CreditID)
	}
	return nil
}

// settledHere reports whether this terminal may ask for credit again: each
// of its load rows of it failed, or was left unknown, and the host has
// closed it (completion reported, or SettledElsewhere). A row
// owing its completion is reported first.
func (l *Loader) settledHere(ctx context.Context, credit string) (bool, error) {
	rows, err := l.Store.LoadsOfCredit(ctx, credit)
	if err != nil {
		return false, err
	}
	for _, r := range rows {
		if !r.CompletionReported && (r.State == offline.StateDone || r.State == offline.StateFailed && r.Proof != "") {
			l.complete(ctx, r.ID)
			if r, err = l.Store.Get(ctx, r.ID); err != nil {
				return false, err
			}
		}
		if r.State != offline.StateFailed && r.State != offline.StateUnknown || !r.CompletionReported {
			return false, nil
		}
	}
	return true, nil
}

// newRef makes the terminal's name for one M1 authorization.
func newRef() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random ref: %w", err)
	}
	return hexUpper(b[:]), nil
}

// loadOneM1 applies one credit to the wallet, whose state is cur (updated
// by each load): journal row with a new Ref, host authorization at cur,
// increment; the row done and the host's completion are left to after
// (the row is durable, and its completion owed, from the write-ahead on:
// when the report fails the sync loop makes it).
func (l *Loader) loadOneM1(ctx context.Context, t apdu.Transmitter, w *mifare.Wallet, card string, c hostapi.Credit,
	open *hostapi.M1OpenLoad, cur *mifare.State, rep *LoadReport, after *afterCard) (LoadResult, error) {
	res := LoadResult{CreditID: c.ID, AmountFen: c.AmountFen, Note: c.Note}
	// A load before this one on the tap is recorded and reported first:
	// the host holds the wallet's load open, and authorizes no other,
	// until it is completed; and the wallet's sequence settles one
	// unrecorded row, not two in a row.
	if err := after.run(); err != nil {
		l.logger().Warn("the last commit of an earlier M1 load", "err", err)
	}
	if after.unrecorded != nil {
		res.Refused = "the last load of this tap is not recorded yet: this one waits for the next tap"
		return res, errLoadsWait
	}
	capFen, overCap, why, err := l.loadCap(ctx, card, min(l.ownCap(), mifare.MaxBalance), "the wallet")
	if err != nil || why != "" {
		res.Refused = why
		return res, err
	}
	if cur.Balance+c.AmountFen > capFen {
		res.Refused = overCap(cur.Balance, c.AmountFen)
		return res, nil
	}
	if open != nil {
		res.Refused = fmt.Sprintf("the wallet has an open load at the host (credit %s, terminal %s): it takes no other until that is settled", open.CreditID, open.Terminal)
		return res, nil
	}
	if ok, err := l.settledHere(ctx, c.ID); err != nil {
		return res, err
	} else if !ok {
		res.Refused = "an earlier load of this credit here is not settled with the host yet"
		return res, nil
	}
	ref, err := newRef()
	if err != nil {
		return res, err
	}
	when := l.now().Truncate(time.Second).Format(hostapi.TimeLayout)
	// Rule 2 of the money rules, and more: the row is on disk before the
	// host is even asked, so every authorization the host may hold for
	// this terminal has a row here that settles it.
	row, err := l.Store.Begin(ctx, offline.Row{Kind: offline.KindLoad, State: offline.StateIntent, Card: card, Purse: hostapi.PurseM1,
		Counter: uint16(cur.Seq), BalanceFen: cur.Balance, AmountFen: c.AmountFen, CreditID: c.ID, Time: when, MAC2: ref})
	if err != nil {
		return res, fmt.Errorf("journal before an M1 load: %w", err)
	}
	notApplied := func(detail string) {
		proof := hostsync.M1NotApplied{BalanceFen: cur.Balance}
		if err := l.Store.FinishNotApplied(ctx, row.ID, proof.Encode(), detail); err != nil {
			l.logger().Error("journal update failed; the next tap resolves it from the wallet", "journal", row.ID, "err", err)
			return
		}
		l.complete(ctx, row.ID)
	}
	hctx, cancel := l.hostCtx(ctx)
	_, err = l.Host.AuthorizeLoad(hctx, hostapi.LoadAuthorizeRequest{CreditID: c.ID, Card: card, Purse: hostapi.PurseM1, AmountFen: c.AmountFen,
		OldBalanceFen: cur.Balance, OnlineCounter: uint16(cur.Seq), Time: when, Ref: ref})
	cancel()
	if err != nil {
		// Nothing written. Whether the host recorded it or not, the
		// completion (owed until it is heard) closes it.
		notApplied("not authorized: " + err.Error())
		if errors.Is(err, hostsync.ErrUnreachable) {
			rep.HostOffline = true
			res.Refused = "host unreachable: the top-up applies on a later tap"
		} else {
			res.Refused = err.Error()
		}
		return res, nil
	}
	change, err := w.Increment(t, c.AmountFen, func(ch mifare.Change) error {
		if ch.Old != cur.Balance || ch.Seq != cur.Seq {
			return fmt.Errorf("the wallet holds %d fen at sequence %d, the load was authorized at %d, sequence %d", ch.Old, ch.Seq, cur.Balance, cur.Seq)
		}
		return nil
	})
	switch {
	case errors.Is(err, mifare.ErrOutcomeUnknown):
		// Only the wallet can tell, on its next tap (rule 1 or 2).
		l.finish(ctx, row.ID, offline.StateUnknown, "", "no answer to the value block write: "+err.Error())
		return res, err
	case err != nil:
		notApplied("the wallet was not written: " + err.Error())
		if _, answered := apdu.SW(err); !answered && !errors.Is(err, mifare.ErrBadAmount) && !errors.Is(err, mifare.ErrInsufficientBalance) {
			return res, err // the card left, most likely: the tap is over
		}
		res.Refused = "the wallet refused the load: " + err.Error()
		return res, nil
	}
	row.State = offline.StateDone
	detail := ""
	if change.BackupStale {
		detail = "backup block not updated; the next read repairs it"
	}
	// The money is on the wallet: the commit and the report need it no
	// more. Until the commit, the row in intent is settled from the
	// wallet's balance and sequence (rule 1), so nothing may change the
	// wallet before it: a sale on this tap flushes it first and does not
	// follow one that failed (Purchaser.chargeM1), nor does another load.
	after.add(func() error {
		if err := l.storeDone(ctx, nil, row, detail); err != nil {
			l.logger().Error("journal update failed; the next tap resolves it from the wallet", "journal", row.ID, "err", err)
			after.unrecorded = fmt.Errorf("journal of an M1 load that reached the wallet: %w", err)
		}
		return nil
	})
	after.report(func() { l.complete(ctx, row.ID) })
	cur.Balance, cur.Seq = change.New, change.Seq+1
	rep.Balance = change.New
	res.Applied, res.NewBalance = true, change.New
	l.logger().Info("credit loaded onto an M1 wallet", "card", redact.CardNumber(card), "credit", c.ID,
		"amount", money.Format(c.AmountFen), "balance", money.Format(change.New))
	return res, nil
}
