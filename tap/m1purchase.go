package tap

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/mifare"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/redact"
)

// PurseM1 is the Purse of journal rows of MIFARE Classic wallets.
const PurseM1 = "M1"

// ReadM1 identifies a MIFARE Classic wallet card (one without the
// e-purse) by its UID and reads its state (the read repairs a torn write
// from the backup block), then settles the card's unfinished purchases from
// its balance and sequence (mifare.Change.Happened). It must run before
// anything changes the wallet on this tap (a load). It needs Wallet.
func (p *Purchaser) ReadM1(ctx context.Context, t apdu.Transmitter) (PurchaseReport, mifare.State, error) {
	var rep PurchaseReport
	uid, err := mifare.UID(t)
	if err != nil {
		return rep, mifare.State{}, err
	}
	card := hostapi.UIDCard(uid)
	rep.Card = card
	st, err := p.readM1(t)
	if err != nil {
		return rep, st, fmt.Errorf("M1 wallet: %w", err)
	}
	if st.Repair != mifare.RepairNone {
		p.logger().Warn("M1 wallet repaired from a torn write", "card", redact.CardNumber(card), "repair", st.Repair.String())
	}
	rep.Balance = st.Balance
	return rep, st, p.settleM1(ctx, card, st, &rep)
}

// settleM1 settles card's unfinished purchases from the wallet's state: the
// balance after at the next sequence means the debit happened, the balance
// before at the same sequence means it did not; anything else means the
// wallet changed elsewhere since, and the row is left to the host.
func (p *Purchaser) settleM1(ctx context.Context, card string, st mifare.State, rep *PurchaseReport) error {
	rows, err := p.Store.Unresolved(ctx, card)
	if err != nil {
		return err
	}
	for _, row := range rows {
		if row.Kind != offline.KindPurchase || row.Purse != PurseM1 {
			continue
		}
		rec := PurchaseRecovery{JournalID: row.ID, AmountFen: row.AmountFen}
		ch := mifare.Change{Old: row.BalanceFen, New: row.BalanceFen - row.AmountFen, Seq: byte(row.Counter)}
		happened, err := ch.Happened(st)
		switch {
		case err != nil:
			p.finish(ctx, row.ID, offline.StateUnknown, "", "left to the host: "+err.Error())
			continue
		case happened:
			if err := p.storeDone(ctx, nil, row, "recovered: the wallet holds the balance after the purchase"); err != nil {
				return err
			}
			rec.Applied = true
		default:
			if err := p.Store.Finish(ctx, row.ID, offline.StateFailed, "", "recovered: the wallet holds the balance before the purchase"); err != nil {
				return err
			}
		}
		rep.Recovered = append(rep.Recovered, rec)
	}
	return nil
}

// ChargeM1 is Charge for the M1 wallet ReadM1 read: rep is ReadM1's
// report, its Balance updated by any load since. It debits the armed sale.
// There is no PSAM, no PIN and no card log: the daily limit counts this
// terminal's journal, and a sale over it is refused. A card on the deny
// list is refused.
func (p *Purchaser) ChargeM1(ctx context.Context, t apdu.Transmitter, rep PurchaseReport) (PurchaseReport, error) {
	return p.chargeM1(ctx, t, rep, &afterCard{})
}

// chargeM1 is ChargeM1 on a tap whose load left work for after the card
// (Loader.applyM1): a load's last commit is done before the sale's
// write-ahead, since the wallet's balance and sequence settle one
// unrecorded row, not a load and a sale after it; and no sale follows a
// load that could not be recorded.
func (p *Purchaser) chargeM1(ctx context.Context, t apdu.Transmitter, rep PurchaseReport, after *afterCard) (PurchaseReport, error) {
	card, balance := rep.Card, rep.Balance
	if denied, reason, err := p.Store.Denied(ctx, card); err != nil {
		return rep, err
	} else if denied {
		return rep, fmt.Errorf("%w (%s)", ErrCardDenied, reason)
	}
	if err := productExpired(ctx, p.Store, card, p.now()); err != nil {
		return rep, err
	}
	now := p.now()
	class, err := p.cardClass(ctx, card, 0, false) // an M1 wallet has no card type
	if err != nil {
		return rep, err
	}
	rep.Class = class
	sale, inDoubt, per, inPeriod, err := p.takeSale(card, class, now)
	if err != nil || sale.ID == "" {
		return rep, err
	}
	defer p.Till.release()
	rep.Sale, rep.Period = sale, per.Name
	if paid, err := p.settleInDoubt(ctx, sale, inDoubt, &rep); paid || err != nil {
		return rep, err
	}
	if sale.Split {
		return rep, ErrSplitM1
	}
	if err := p.Till.shiftOpen(); err != nil {
		return rep, err
	}
	if err := p.admitPeriod(sale, per, inPeriod, now); err != nil {
		return rep, err
	}
	sale = discount(sale, per, inPeriod, class, &rep)
	if err := p.mealLimitsM1(ctx, card, sale, per, inPeriod, now); err != nil {
		return rep, err
	}
	if sale.AmountFen > balance {
		return rep, fmt.Errorf("%w: the card holds %s, the sale is %s", ErrInsufficientBalance, money.Format(balance), money.Format(sale.AmountFen))
	}
	if limit := p.dailyLimit(); limit > 0 {
		today, err := p.Store.PurchasesOn(ctx, card, p.now().Format("20060102"))
		if err != nil {
			return rep, err
		}
		for _, r := range today {
			rep.SpentToday += r.AmountFen
		}
		if rep.SpentToday+sale.AmountFen > limit {
			return rep, fmt.Errorf("%w: an M1 card has no PIN, so the sale is refused (spent today %s, sale %s, limit %s)",
				ErrPINRequired, money.Format(rep.SpentToday), money.Format(sale.AmountFen), money.Format(limit))
		}
	}
	if err := after.flush(); err != nil {
		p.logger().Warn("the last commit of an M1 load", "err", err)
	}
	if after.unrecorded != nil {
		return rep, after.unrecorded
	}
	when := p.now().Truncate(time.Second)
	var row offline.Row
	change, err := p.Wallet.Decrement(t, sale.AmountFen, func(c mifare.Change) error {
		// Rule 2: on disk before the first block write.
		var err error
		// Counter holds the wallet's sequence before the debit, which
		// settles it if the answer is lost (settleM1).
		row, err = p.Store.Begin(ctx, offline.Row{Kind: offline.KindPurchase, State: offline.StateIntent, Card: card, Purse: PurseM1,
			Counter: uint16(c.Seq), BalanceFen: c.Old, AmountFen: sale.AmountFen, Time: when.Format(hostapi.TimeLayout), Detail: rep.rowNote(),
			Sale: rep.saleFacts()})
		if err == nil {
			err = p.Till.rowInShift(row)
		}
		return err
	})
	switch {
	case errors.Is(err, mifare.ErrOutcomeUnknown):
		p.finish(ctx, row.ID, offline.StateUnknown, "", "no answer to the value block write: "+err.Error())
		p.Till.markInDoubt(sale.ID, card, row.ID)
		rep.JournalID = row.ID
		return rep, fmt.Errorf("%w (journal row %s): %w", ErrSaleInDoubt, row.ID, err)
	case errors.Is(err, ErrNoShift) && row.ID != "":
		// Written ahead in no shift: nothing was written to the wallet.
		p.finish(ctx, row.ID, offline.StateFailed, "", err.Error())
		return rep, err
	case err != nil && row.ID != "":
		// Written ahead, then refused before any write that counts.
		p.finish(ctx, row.ID, offline.StateFailed, "", "the wallet refused the purchase: "+err.Error())
		return rep, err
	case errors.Is(err, mifare.ErrInsufficientBalance):
		return rep, fmt.Errorf("%w: %v", ErrInsufficientBalance, err)
	case err != nil:
		return rep, err
	}
	row.State = offline.StateDone
	detail := ""
	if change.BackupStale {
		detail = "backup block not updated; the next read repairs it"
	}
	if err := p.storeDone(ctx, nil, row, detail); err != nil {
		p.logger().Error("journal update failed; the next tap resolves it from the card", "journal", row.ID, "err", err)
	}
	p.Till.paid(sale.ID)
	rep.Paid, rep.JournalID, rep.Balance = true, row.ID, change.New
	p.logger().Info("purchase debited from an M1 wallet", "card", redact.CardNumber(card), "journal", row.ID,
		"amount", money.Format(sale.AmountFen), "balance", money.Format(change.New))
	return rep, nil
}

// readM1 reads the wallet. Keys kept in the reader (non-volatile slots) are
// written there once, not on every tap (that memory wears), and again when
// authentication fails: a reader swapped for a new one has none.
func (p *Purchaser) readM1(t apdu.Transmitter) (mifare.State, error) {
	if !p.Wallet.Slots.Preloaded {
		return p.Wallet.ReadState(t)
	}
	if !p.m1KeysLoaded {
		if err := p.Wallet.LoadKeys(t); err != nil {
			return mifare.State{}, err
		}
		p.m1KeysLoaded = true
	}
	st, err := p.Wallet.ReadState(t)
	if errors.Is(err, mifare.ErrAuth) {
		if err := p.Wallet.LoadKeys(t); err != nil {
			return mifare.State{}, err
		}
		return p.Wallet.ReadState(t)
	}
	return st, err
}
