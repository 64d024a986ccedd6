package tap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/apdu/mifare"
	"github.com/cardd/cardd/apdu/psam"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/redact"
)

// Errors that refuse a purchase before the card changes.
var (
	ErrInsufficientBalance = errors.New("insufficient balance")
	ErrPINRequired         = errors.New("over the daily limit: the cardholder's PIN is required")
	ErrNoSAM               = errors.New("no PSAM: purchases need the PSAM in the SAM reader")
	// ErrPSAMRefused: the PSAM (or the card, for the security code its
	// profile needs) refused a step before the debit, so nothing was paid
	// and nothing journaled; the message names the PSAM profile and the
	// status word, which usually mean psam.profile does not fit this PSAM
	// or card family (docs/psam.md).
	ErrPSAMRefused = errors.New("the PSAM refused the purchase")
	// ErrNoCardSerial: the card's application serial, from which the
	// PSAM diversifies its key, was not read.
	ErrNoCardSerial = errors.New("no application serial to diversify the card's key from")
	// ErrPSAMChanged: the PSAM, set up again within a tap, gave another
	// terminal id or key index than the card's INITIALIZE carried.
	ErrPSAMChanged = errors.New("the PSAM's set-up changed")
)

// ErrMAC2Refused ends a tap whose card debited the sale but whose MAC2 the
// PSAM did not accept: the card has not proved that it holds the issuer's
// purchase key, so it may not be genuine. The sale is paid all the same
// (the card debited and gave its TAC: charging it again would take the
// money twice); its journal row is done with the TAC and its detail begins
// with MAC2Alarm, for the host, which verifies the TAC and judges.
var ErrMAC2Refused = errors.New("the PSAM did not accept the card's MAC2")

// MAC2Alarm begins the detail of a purchase row whose MAC2 the PSAM did not
// accept: what the host and an operator search the journal for.
const MAC2Alarm = "ALARM: the PSAM did not accept the card's MAC2"

// SAMSession is one exchange with the PSAM, inside a PC/SC transaction;
// *reader.Session is one.
type SAMSession interface {
	apdu.Transmitter
	Close() error
}

// Purchaser debits the armed sale from a tapped card through the PSAM,
// following the money rules of DESIGN.md: the purchase row is journaled
// before DEBIT FOR PURCHASE, and a debit whose answer never came is settled
// from the card's own counter on its next tap (INITIALIZE FOR PURCHASE shows
// the counter; GET TRANSACTION PROVE gives the TAC).
type Purchaser struct {
	Store *offline.Store
	Till  *Till
	// SAMApps are the PSAM's purchase applications to try (psam.DefaultApps
	// when nil), unless the profile names its own.
	SAMApps []psam.App
	// PSAMProfiles give, per card family (CardRead.Profile's name), how
	// the PSAM is spoken to (key index, diversification, security code);
	// the zero value is the profile cardd always used.
	PSAMProfiles psam.Profiles
	// TerminalID is the terminal id sent in a recovery probe, which
	// changes nothing on the card; a purchase uses the PSAM's own id.
	TerminalID [6]byte
	// DailyLimit is the most a card may spend in a day without its PIN;
	// zero means 200.00, negative means no limit.
	DailyLimit int64
	// LogFile is the SFI of the purchase log read for the daily sum; zero
	// means 0x18.
	LogFile byte
	// LogContinues says the read's records (CardRead.Log) are the newest
	// of LogFile alone, so the daily sum reads on from the first record
	// not read; otherwise (several log files merged) it reads LogFile anew.
	LogContinues bool
	Now          func() time.Time // nil: time.Now
	Logger       *slog.Logger     // nil: slog.Default()
	// Receipt, when set, gives the receipt of a purchase that reached the
	// card; it is queued with the row that records it done. cr is nil for
	// an M1 wallet.
	Receipt func(cr *CardRead, row offline.Row) (offline.NewReceipt, error)
	// Wallet, when set, is where M1 cards (MIFARE Classic, no e-purse) keep
	// their balance: they pay through ChargeM1.
	Wallet *mifare.Wallet
	// CloseCards has this terminal close the cards the host asked to
	// close (closeCard): their tap debits their whole balance.
	CloseCards bool

	// m1KeysLoaded is whether a Preloaded wallet's keys were put into the
	// reader by this process (only the tap loop touches it).
	m1KeysLoaded bool
	// psamKeyIndex is, per PSAM profile (its String), the purchase key
	// index its PSAM last gave, for the recovery probe, which runs with
	// no PSAM open (only the tap loop touches it).
	psamKeyIndex map[string]byte
}

// PurchaseRecovery is an unfinished purchase of an earlier tap, settled on
// this one from the card's counter.
type PurchaseRecovery struct {
	JournalID string
	AmountFen int64
	Applied   bool
}

// PurchaseReport is what the purchase step of a tap did.
type PurchaseReport struct {
	// Card is the card's id: its number, or hostapi.UIDCard for an M1
	// wallet (set by ReadM1).
	Card      string
	Recovered []PurchaseRecovery
	// Sale is the sale this tap took (zero when none was armed).
	Sale Sale
	// Split is, for a split sale, what the card paid (or, when Paid is
	// false, was to pay) and what is left to collect by other means.
	Split *SplitParts
	// Period is the meal period of the tap ("" without one).
	Period string
	// Class is the card's identity class: the host's card record's, else
	// its card type's (discount.go); "" for none, or at a terminal
	// without meal periods.
	Class string
	// Discount is what the class took off the sale (Sale then has the
	// amount after it); nil when nothing.
	Discount *Discount
	// Close is, for a card the host asked to close, what this tap did of
	// it (then no sale was taken); nil otherwise.
	Close *CloseReport
	// Paid is true when the sale is on the card: debited on this tap, or
	// found debited by a recovery.
	Paid       bool
	JournalID  string
	TAC        string
	TermSerial uint32
	// MAC2Verified is whether the PSAM accepted the card's MAC2 (false on
	// a recovered purchase, which has no MAC2).
	MAC2Verified bool
	// SpentToday is what the card had spent today before this sale.
	SpentToday  int64
	PINVerified bool
	Balance     int64 // the card's balance afterwards
}

func (p *Purchaser) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Purchaser) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

func (p *Purchaser) dailyLimit() int64 {
	if p.DailyLimit == 0 {
		return 20000
	}
	return p.DailyLimit
}

// Charge runs after the read and the on-tap load, in the same card session,
// balance being the card's balance now. It first settles this card's
// unfinished purchases, then takes the armed sale, if any, and debits it.
// openSAM opens the PSAM for the debit. An error means the sale was not
// paid on this tap, except ErrMAC2Refused: paid (rep.Paid), but the card
// did not prove itself. The report and the journal say what was done.
func (p *Purchaser) Charge(ctx context.Context, t apdu.Transmitter, cr *CardRead, balance int64, openSAM func() (SAMSession, error)) (PurchaseReport, error) {
	rep := PurchaseReport{}
	after := &afterCard{}
	err := p.charge(ctx, t, cr, balance, openSAM, &rep, after)
	if aerr := after.run(); err == nil {
		err = aerr
	}
	return rep, err
}

// charge is Charge into rep, leaving to after what needs the card no more
// once DEBIT FOR PURCHASE has answered: the PSAM's check of the card's
// MAC2 and the row's last commit (an ErrMAC2Refused comes from after).
func (p *Purchaser) charge(ctx context.Context, t apdu.Transmitter, cr *CardRead, balance int64, openSAM func() (SAMSession, error),
	rep *PurchaseReport, after *afterCard) error {
	rep.Balance = balance
	card := cr.Info.CardNumber
	if err := p.recover(ctx, t, cr, rep); err != nil {
		return err
	}
	if closing, err := p.closeCard(ctx, t, cr, openSAM, rep, after); closing || err != nil {
		return err
	}
	now := p.now()
	class, err := p.cardClass(ctx, card, cr.Info.CardType, true)
	if err != nil {
		return err
	}
	rep.Class = class
	sale, inDoubt, per, inPeriod, err := p.takeSale(card, rep.Class, now)
	if err != nil || sale.ID == "" {
		return err
	}
	defer p.Till.release()
	rep.Sale, rep.Period = sale, per.Name
	if paid, err := p.settleInDoubt(ctx, sale, inDoubt, rep); paid || err != nil {
		return err
	}
	if err := p.Till.shiftOpen(); err != nil {
		return err
	}
	if err := p.admitPeriod(sale, per, inPeriod, now); err != nil {
		return err
	}
	sale = discount(sale, per, inPeriod, rep.Class, rep)
	sale, none, err := p.splitSale(t, cr, sale, rep)
	if none || err != nil {
		return err
	}
	if !cr.balanceDeferred && sale.AmountFen > rep.Balance {
		return insufficient(rep.Balance, sale)
	}
	if err := p.checkLimits(ctx, t, cr, sale, per, inPeriod, now, rep); err != nil {
		return err
	}
	// A load's last commit first, so that at most one row of this card
	// waits for it (afterCard), and before INIT FOR PURCHASE: its fsync
	// must not sit inside the card's purchase session.
	if err := after.flush(); err != nil {
		p.logger().Warn("the last commit of a load", "err", err)
	}
	if openSAM == nil {
		return ErrNoSAM
	}
	sam, err := openSAM()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoSAM, err)
	}
	err = p.debit(ctx, t, sam, cr, sale, rep, after)
	// After the debit's own work (the MAC2 check needs the PSAM).
	after.add(func() error {
		if err := sam.Close(); err != nil {
			p.logger().Warn("closing PSAM session", "err", err)
		}
		return nil
	})
	return err
}

// insufficient refuses a sale above the card's balance.
func insufficient(balance int64, sale Sale) error {
	return fmt.Errorf("%w: the card holds %s, the sale is %s", ErrInsufficientBalance, money.Format(balance), money.Format(sale.AmountFen))
}

// checkLimit holds a sale that would take the card over the daily limit
// to the cardholder's PIN; spent is what it spent today before the sale.
func (p *Purchaser) checkLimit(t apdu.Transmitter, sale Sale, spent int64, rep *PurchaseReport) error {
	limit := p.dailyLimit()
	if limit <= 0 {
		return nil
	}
	rep.SpentToday = spent
	if spent+sale.AmountFen <= limit {
		return nil
	}
	if sale.PIN == "" {
		return fmt.Errorf("%w (spent today %s, sale %s, limit %s)", ErrPINRequired, money.Format(spent), money.Format(sale.AmountFen), money.Format(limit))
	}
	if err := epurse.VerifyPIN(t, sale.PIN); err != nil {
		if errors.Is(err, apdu.ErrWrongPIN) || errors.Is(err, apdu.ErrAuthMethodBlocked) {
			// Never sent again: each try uses one of the card's.
			p.Till.dropPIN(sale.ID)
		}
		return fmt.Errorf("cardholder PIN: %w", err)
	}
	rep.PINVerified = true
	return nil
}

// settleInDoubt looks at the journal row of the sale's earlier debit that
// went unanswered, which this tap's recovery has just settled from the
// card: done means the sale is paid (paid true); failed frees the sale to
// be charged now; still unknown keeps it waiting (an error).
func (p *Purchaser) settleInDoubt(ctx context.Context, sale Sale, journalID string, rep *PurchaseReport) (paid bool, err error) {
	if journalID == "" {
		return false, nil
	}
	row, err := p.Store.Get(ctx, journalID)
	if err != nil {
		return false, err
	}
	switch row.State {
	case offline.StateDone:
		p.Till.paid(sale.ID)
		splitInDoubt(row, rep)
		discountInDoubt(row, rep)
		rep.Paid, rep.JournalID, rep.TAC, rep.TermSerial = true, row.ID, row.TAC, row.TermSerial
		return true, nil
	case offline.StateFailed:
		p.Till.clearDoubt(sale.ID)
		return false, nil
	}
	return false, fmt.Errorf("%w: the card cannot tell whether journal row %s happened; the host settles it", ErrSaleInDoubt, row.ID)
}

// Settle settles this card's unfinished purchases and takes no sale: for a
// tap that ends early (a denied or expired card), since reading the card's
// counter changes nothing on it.
func (p *Purchaser) Settle(ctx context.Context, t apdu.Transmitter, cr *CardRead, balance int64) (PurchaseReport, error) {
	rep := PurchaseReport{Balance: balance}
	return rep, p.recover(ctx, t, cr, &rep)
}

// debit is one purchase: PSAM ready, INITIALIZE FOR PURCHASE, MAC1 from the
// PSAM, write-ahead row, DEBIT FOR PURCHASE; then, left to after (the card
// may leave), MAC2 to the PSAM and the row done.
func (p *Purchaser) debit(ctx context.Context, t apdu.Transmitter, sam apdu.Transmitter, cr *CardRead, sale Sale, rep *PurchaseReport, after *afterCard) error {
	prof := p.profile(cr)
	if cr.Info.AppSerial == ([10]byte{}) {
		// The PSAM diversifies the card's key from its serial (EF 0x15
		// bytes 12-19): without it, MAC1 is certainly wrong, and a card
		// may count wrong MACs towards locking itself.
		return psamRefused(prof, "the card's EF 0x15 did not read", ErrNoCardSerial)
	}
	info, cached, err := p.openPSAM(sam, prof)
	if err != nil {
		return err
	}
	var code [psam.SecurityCodeLen]byte
	if prof.SecurityCode {
		// Before the card's INITIALIZE: any command between it and DEBIT
		// ends the card's purchase session.
		if code, err = psam.CardSecurityCode(t); err != nil {
			if !answered(err) {
				return err // the card left, or the tap's time is up
			}
			return psamRefused(prof, "the card gave no security code", err)
		}
	}
	init, err := epurse.InitPurchase(t, cr.Purse, info.KeyIndex, sale.AmountFen, info.TerminalID)
	if err != nil {
		if errors.Is(err, apdu.ErrInsufficientBalance) {
			return fmt.Errorf("%w: %v", ErrInsufficientBalance, err)
		}
		if errors.Is(err, apdu.ErrKeyIndex) {
			return psamRefused(prof, fmt.Sprintf("the card has no purchase key index %d", info.KeyIndex), err)
		}
		return err
	}
	if cr.balanceDeferred {
		// The read left the balance to this answer (Runner.defersBalance).
		// A card that holds less than the sale answers 9401 above; one
		// that would go into overdraft answers, and is refused here as the
		// read's balance would have refused it: an INITIALIZE without its
		// DEBIT changes nothing on the card, its counter included.
		cr.balanceFromInit(init.Balance)
		if rep.Balance = cr.Balance; sale.AmountFen > rep.Balance {
			return insufficient(rep.Balance, sale)
		}
	}
	when := p.now().Truncate(time.Second)
	serial, mac1, err := p.mac1(sam, prof, cr, sale, init, code, when)
	if err != nil && cached && answered(err) {
		// The set-up is from an earlier tap: a PSAM reset since (by
		// another application, or a power cycle pcscd did not report) is
		// back in its MF and refuses; set it up again, once, and ask
		// again. The card's INITIALIZE stands: no card command came since.
		p.logger().Info("the PSAM refused with its set-up of an earlier tap; setting it up again", "psam_profile", prof.String(), "err", err)
		dropSetup(sam)
		var again psam.Info
		if again, _, err = p.openPSAM(sam, prof); err != nil {
			return err
		}
		if again.TerminalID != info.TerminalID || again.KeyIndex != info.KeyIndex {
			// The card's INITIALIZE carried the old ones: its MAC1 would
			// be wrong, and a card counts wrong MACs towards locking.
			return psamRefused(prof, "the PSAM's terminal id or key index changed within the tap", ErrPSAMChanged)
		}
		serial, mac1, err = p.mac1(sam, prof, cr, sale, init, code, when)
	}
	if err != nil {
		return err
	}
	// Rule 2: the row is on disk before the card can change.
	row, err := p.Store.Begin(ctx, offline.Row{
		Kind: offline.KindPurchase, State: offline.StateIntent, Card: cr.Info.CardNumber, Purse: cr.Purse.String(),
		Counter: init.OfflineCounter, BalanceFen: init.Balance, AmountFen: sale.AmountFen, TermSerial: serial, CreditID: rep.closeID(),
		PSAMTerminal: hexUpper(info.TerminalID[:]), Time: when.Format(hostapi.TimeLayout), Detail: rep.rowNote(), Sale: rep.saleFacts(),
	})
	if err != nil {
		return fmt.Errorf("journal before DEBIT FOR PURCHASE: %w", err)
	}
	if err := p.Till.rowInShift(row); err != nil {
		p.finish(ctx, row.ID, offline.StateFailed, "", err.Error())
		return err
	}
	rep.JournalID, rep.TermSerial = row.ID, serial
	tac, mac2, err := epurse.DebitPurchase(t, serial, when, mac1)
	if err != nil {
		if errors.Is(err, apdu.ErrMACInvalid) {
			// The card found MAC1 wrong: the PSAM answered from a state
			// not its set-up (another program sharing it selected another
			// application). Trusted again, it would fail every sale, each
			// a wrong MAC counted on a cardholder's card.
			dropSetup(sam)
		}
		return p.debitFailed(ctx, t, cr, sale, init, row, err, rep)
	}
	// The money moved: the sale is paid whatever the PSAM says of MAC2.
	p.Till.paid(sale.ID)
	row.State, row.TAC = offline.StateDone, hexUpper(tac[:])
	rep.Paid, rep.TAC = true, row.TAC
	rep.Balance = cr.shownAfter(init.Balance, -sale.AmountFen)
	after.add(func() error { return p.afterDebit(ctx, sam, cr, sale, init, row, mac2, rep) })
	return nil
}

// openPSAM is the PSAM's set-up for prof: psam.OpenProfile, or what it
// learnt on an earlier tap of the same PSAM connection (cached), which a
// session that keeps it (setupCache) remembers. A set-up that fails is
// ErrNoSAM: nothing was paid or journaled.
func (p *Purchaser) openPSAM(sam apdu.Transmitter, prof psam.Profile) (info psam.Info, cached bool, err error) {
	c, keeps := sam.(setupCache)
	if keeps {
		if info, ok := c.setupFor(prof.String()); ok {
			return info, true, nil
		}
	}
	info, err = psam.OpenProfile(sam, prof, p.SAMApps...)
	if err != nil {
		return info, false, fmt.Errorf("%w (PSAM profile %s): %v", ErrNoSAM, prof, err)
	}
	if keeps {
		c.remember(prof.String(), info)
	}
	if prof.KeyIndexFromPSAM {
		if p.psamKeyIndex == nil {
			p.psamKeyIndex = map[string]byte{}
		}
		p.psamKeyIndex[prof.String()] = info.KeyIndex
	}
	return info, false, nil
}

// dropSetup forgets the PSAM's set-up kept on sam, if it keeps one, so
// that the next purchase sets the PSAM up again.
func dropSetup(sam apdu.Transmitter) {
	if c, ok := sam.(setupCache); ok {
		c.drop()
	}
}

// mac1 is the PSAM's part before the debit: the card's security code
// when the profile wants it, then INIT SAM FOR PURCHASE for the card's
// INITIALIZE answer. A refusal is ErrPSAMRefused and a PSAM that did not
// answer ErrNoSAM (samUnavailable); answered(err) tells the first.
func (p *Purchaser) mac1(sam apdu.Transmitter, prof psam.Profile, cr *CardRead, sale Sale, init epurse.PurchaseInit,
	code [psam.SecurityCodeLen]byte, when time.Time) (uint32, [4]byte, error) {
	if prof.SecurityCode {
		if err := psam.VerifySecurityCode(sam, code); err != nil {
			if !answered(err) {
				return 0, [4]byte{}, samUnavailable(prof, err)
			}
			return 0, [4]byte{}, psamRefused(prof, "the PSAM refused the card's security code", err)
		}
	}
	serial, mac1, err := psam.InitForPurchase(sam, psam.PurchaseMAC1Input{
		Card: init, Amount: sale.AmountFen, Type: cr.Purse.PurchaseType(), When: when, CardSerial: cr.Info.AppSerial[:],
		IssuerFactor: prof.Diversification.SecondFactor(cr.Info.IssuerID),
	})
	if err != nil {
		if answered(err) {
			return 0, mac1, psamRefused(prof, "INIT SAM FOR PURCHASE refused", err)
		}
		return 0, mac1, samUnavailable(prof, err)
	}
	return serial, mac1, nil
}

// afterDebit is a purchase's work once the card has debited it, which
// needs the card no more: the PSAM's check of the card's MAC2, and the row
// done (with its receipt). A crash before it leaves the row in intent, and
// the card's next tap settles it from its counter (rule 3).
func (p *Purchaser) afterDebit(ctx context.Context, sam apdu.Transmitter, cr *CardRead, sale Sale, init epurse.PurchaseInit,
	row offline.Row, mac2 [4]byte, rep *PurchaseReport) error {
	detail := ""
	macErr := psam.VerifyMAC2(sam, mac2)
	if macErr != nil {
		// The card has debited and given its TAC: the purchase stands, and
		// the host, which verifies the TAC, judges it; but the tap ends in
		// an alarm, not as a sale like any other.
		detail = MAC2Alarm + ": " + macErr.Error()
		if !errors.Is(macErr, apdu.ErrMACInvalid) {
			// Not a verdict on the card (the PSAM gone, the tap's time up):
			// the host still judges the TAC, but the operator should not
			// read it as a forged card.
			detail = MAC2Alarm + " (not checked): " + macErr.Error()
		}
		p.logger().Error("ALARM: the PSAM did not accept the card's MAC2; the purchase is recorded for the host to judge",
			"card", redact.CardNumber(cr.Info.CardNumber), "journal", row.ID, "err", macErr)
	} else {
		rep.MAC2Verified = true
	}
	if err := p.storeDone(ctx, cr, row, detail); err != nil {
		p.logger().Error("journal update failed; the next tap resolves it from the card", "journal", row.ID, "err", err)
	}
	p.logger().Info("purchase debited", "card", redact.CardNumber(cr.Info.CardNumber), "journal", row.ID,
		"amount", money.Format(sale.AmountFen), "balance", money.Format(rep.Balance), "counter", init.OfflineCounter, "term_serial", row.TermSerial, "psam_profile", p.profile(cr).String())
	if macErr != nil {
		// The PSAM's own error is text only: whatever it was (a wrong MAC2,
		// a PSAM gone), the tap is classed by the alarm.
		return fmt.Errorf("%w (journal row %s): %v", ErrMAC2Refused, row.ID, macErr)
	}
	return nil
}

// debitFailed settles a DEBIT FOR PURCHASE that gave no usable answer
// (debitErr), row its write-ahead row and init the card's INITIALIZE
// answer. Whether the card answered or not, only its counter and log say
// what happened (a status word after 61xx may be GET RESPONSE's, with the
// debit done): ask it now, while it may still be here.
func (p *Purchaser) debitFailed(ctx context.Context, t apdu.Transmitter, cr *CardRead, sale Sale, init epurse.PurchaseInit,
	row offline.Row, debitErr error, rep *PurchaseReport) error {
	state, tac, detail, serr := p.settleRow(t, cr, init.Balance, row)
	if serr != nil || state == offline.StateUnknown {
		// The card settles it on its next tap (rule 3); until then the
		// sale waits for this card.
		p.finish(ctx, row.ID, offline.StateUnknown, "", withSplit(row, "no usable answer to DEBIT FOR PURCHASE: "+debitErr.Error()))
		p.Till.markInDoubt(sale.ID, cr.Info.CardNumber, row.ID)
		// In doubt, not "not paid": the card may have debited, and a
		// cashier told otherwise takes a second payment.
		return fmt.Errorf("%w (journal row %s): %w", ErrSaleInDoubt, row.ID, debitErr)
	}
	row.State, row.TAC = state, tac
	if state == offline.StateFailed {
		p.finish(ctx, row.ID, offline.StateFailed, "", withSplit(row, "DEBIT FOR PURCHASE did not happen ("+debitErr.Error()+"): "+detail))
		return fmt.Errorf("the card refused the debit: %w", debitErr)
	}
	if err := p.storeDone(ctx, cr, row, "DEBIT FOR PURCHASE answered "+debitErr.Error()+"; "+detail); err != nil {
		p.logger().Error("journal update failed; the next tap resolves it from the card", "journal", row.ID, "err", err)
	}
	p.Till.paid(sale.ID)
	rep.Paid, rep.TAC, rep.Balance = true, row.TAC, cr.shownAfter(init.Balance, -sale.AmountFen)
	return nil
}

// profile is the PSAM profile for the card read: its family's, else the
// default.
func (p *Purchaser) profile(cr *CardRead) psam.Profile {
	family := ""
	if cr.Profile != nil {
		family = cr.Profile.Name
	}
	return p.PSAMProfiles.For(family)
}

// psamRefused reports a refusal before the debit: nothing was paid or
// journaled. The message says which profile was used and why it failed,
// for the cashier's screen and the operator's log.
func psamRefused(prof psam.Profile, why string, err error) error {
	return fmt.Errorf("%w: %s (PSAM profile %s; check psam.profile and psam.families): %w", ErrPSAMRefused, why, prof, err)
}

// samUnavailable reports a PSAM that did not answer a step before the
// debit: nothing was paid or journaled. Of a PSAM pulled only the text of
// err is kept, since its reader saying "card removed" must not read as the
// cardholder's card; a call abandoned at the tap's deadline stays a
// time-out.
func samUnavailable(prof psam.Profile, err error) error {
	if errors.Is(err, ErrTapTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("PSAM: %w", err)
	}
	return fmt.Errorf("%w (PSAM profile %s): %v", ErrNoSAM, prof, err)
}

// answered reports an error that is an answer: a status word, or data of
// the wrong shape. Before the debit either is a refusal of the step by the
// PSAM (or the card), not a card or PSAM that went away.
func answered(err error) bool {
	_, sw := apdu.SW(err)
	return sw || errors.Is(err, apdu.ErrMalformed)
}

// recover settles this card's unfinished purchases from the card itself
// (settleRow).
func (p *Purchaser) recover(ctx context.Context, t apdu.Transmitter, cr *CardRead, rep *PurchaseReport) error {
	rows, err := p.Store.Unresolved(ctx, cr.Info.CardNumber)
	if err != nil {
		return err
	}
	recovered := false
	for _, row := range rows {
		if row.Kind != offline.KindPurchase || row.Purse != cr.Purse.String() {
			continue
		}
		// The purse, not the balance shown: a card whose second purse
		// takes it all still answers INITIALIZE with its counter.
		state, tac, detail, err := p.settleRow(t, cr, cr.purseOf(rep.Balance), row)
		if err != nil {
			return fmt.Errorf("settling journal row %s from the card: %w", row.ID, err)
		}
		rec := PurchaseRecovery{JournalID: row.ID, AmountFen: row.AmountFen}
		switch state {
		case offline.StateDone:
			row.State, row.TAC = state, tac
			if err := p.storeDone(ctx, cr, row, detail); err != nil {
				return err
			}
			rec.Applied = true
		case offline.StateFailed:
			if err := p.Store.Finish(ctx, row.ID, offline.StateFailed, "", withSplit(row, detail)); err != nil {
				return err
			}
		default:
			p.finish(ctx, row.ID, offline.StateUnknown, "", withSplit(row, detail))
			continue
		}
		recovered = true
		p.logger().Info("unfinished purchase resolved from the card", "card", redact.CardNumber(row.Card), "journal", row.ID, "applied", rec.Applied)
		rep.Recovered = append(rep.Recovered, rec)
	}
	if recovered {
		b, err := cr.balanceNow(t)
		if err != nil {
			return err
		}
		rep.Balance = b
	}
	return nil
}

// settleRow decides from the card whether the DEBIT of a purchase row
// happened (DESIGN.md, money rule 3). The offline counter still at the row's
// means it did not. Otherwise the log record that used the row's counter
// tells: the same amount at the same time is this purchase (its TAC from
// GET TRANSACTION PROVE while the card has nothing newer); anything else is
// another terminal's purchase, made after this one never happened. With
// neither (the log has moved past it) only the host can tell: unknown. An
// error means the card could not be asked (it left).
func (p *Purchaser) settleRow(t apdu.Transmitter, cr *CardRead, balance int64, row offline.Row) (state, tac, detail string, err error) {
	typ := cr.Purse.PurchaseType()
	counter, known, err := p.offlineCounter(t, cr, balance)
	if err != nil {
		return "", "", "", err
	}
	if known && counter == row.Counter {
		return offline.StateFailed, "", "recovered: the card's counter did not move, the debit did not happen", nil
	}
	recs, err := epurse.ReadLog(t, p.logFile(), epurse.MaxLogRecords)
	if err != nil {
		return "", "", "", err
	}
	for i, r := range recs {
		if r.Type != typ || r.Counter != row.Counter {
			continue
		}
		if r.Amount != row.AmountFen || r.Time.Format(hostapi.TimeLayout) != row.Time {
			return offline.StateFailed, "", fmt.Sprintf("recovered: the card's counter %d went to another purchase (%s at %s): this debit did not happen",
				row.Counter, money.Format(r.Amount), r.Time.Format(hostapi.TimeLayout)), nil
		}
		detail = "recovered: the card's log holds this purchase"
		if !known && i == 0 {
			// The newest record: nothing since, so the counter is the
			// next. A purchase that emptied the card (a split sale's
			// usual end) refuses INITIALIZE, yet still gives its TAC.
			counter, known = row.Counter+1, true
		}
		if !known || counter != row.Counter+1 {
			return offline.StateDone, "", detail + "; the card has moved on, so no TAC", nil
		}
		_, t4, err := epurse.GetTransactionProve(t, typ, row.Counter+1)
		if _, answered := apdu.SW(err); err != nil && !answered {
			return "", "", "", err
		} else if err != nil {
			return offline.StateDone, "", detail + "; no TAC from the card: " + err.Error(), nil
		}
		return offline.StateDone, hexUpper(t4[:]), detail, nil
	}
	return offline.StateUnknown, "", fmt.Sprintf("the card's log no longer shows counter %d (card counter %d, known %v): left to the host", row.Counter, counter, known), nil
}

// offlineCounter is the purse's offline counter now, from INITIALIZE FOR
// PURCHASE, which changes nothing until a DEBIT follows. A card with
// nothing to spend refuses it (9401), and one without the key index tried
// (9403: its issuer's index comes from a PSAM not read since the daemon
// started): then known is false, and the card's log alone decides.
func (p *Purchaser) offlineCounter(t apdu.Transmitter, cr *CardRead, balance int64) (counter uint16, known bool, err error) {
	if balance <= 0 {
		return 0, false, nil
	}
	init, err := epurse.InitPurchase(t, cr.Purse, p.probeKeyIndex(cr), 1, p.TerminalID)
	switch {
	case err == nil:
		return init.OfflineCounter, true, nil
	case errors.Is(err, apdu.ErrInsufficientBalance), errors.Is(err, apdu.ErrKeyIndex):
		return 0, false, nil
	}
	return 0, false, err
}

// probeKeyIndex is a purchase key index the card has: its PSAM profile's,
// as configured or as its PSAM last gave it; else 1.
func (p *Purchaser) probeKeyIndex(cr *CardRead) byte {
	prof := p.profile(cr)
	if !prof.KeyIndexFromPSAM {
		return max(prof.KeyIndex, 1)
	}
	if i, ok := p.psamKeyIndex[prof.String()]; ok {
		return i
	}
	return 1
}

func (p *Purchaser) logFile() byte {
	if p.LogFile == 0 {
		return 0x18
	}
	return p.LogFile
}

// todaysPurchases are the card's purchases of today (the terminal's local
// day): those in the card's log, which holds every terminal's, and those of
// this terminal's journal the log no longer shows (it keeps 10 records). A
// purchase in both counts once, matched by purse type and counter.
func (p *Purchaser) todaysPurchases(ctx context.Context, t apdu.Transmitter, cr *CardRead) ([]spend, error) {
	if cr.LogSkipped > 0 {
		// A record that does not parse may be a purchase of today.
		return nil, fmt.Errorf("the card's log has %d record(s) that do not parse: today's spending cannot be summed for the daily limit", cr.LogSkipped)
	}
	today := p.now().Format("20060102")
	recs := cr.Log
	if !cr.historyRead {
		// The tap did not read the log (a mode that does not show it):
		// only today's records count, and they come first.
		var err error
		if recs, err = p.todaysLog(t, today); err != nil {
			return nil, err
		}
	} else if n := len(recs); n > 0 && n < epurse.MaxLogRecords && recs[n-1].Time.Format("20060102") == today {
		// Every record read is from today: older ones may be too. A load
		// on this tap may have pushed a record read already down one: the
		// sum below counts each (type, counter) once.
		first := 1
		if p.LogContinues {
			first = n + 1
		}
		more, err := epurse.ReadLogFrom(t, p.logFile(), first, epurse.MaxLogRecords)
		if err != nil {
			return nil, fmt.Errorf("reading the card's log for the daily limit: %w", err)
		}
		recs = append(slices.Clone(recs), more...)
	}
	spends, seen := logSpends(recs, today)
	rows, err := p.Store.PurchasesOn(ctx, cr.Info.CardNumber, today)
	if err != nil {
		return nil, err
	}
	for _, row := range rows {
		typ := epurse.PurseEP.PurchaseType()
		if row.Purse == epurse.PurseED.String() {
			typ = epurse.PurseED.PurchaseType()
		}
		if !seen[logKey{typ, row.Counter}] {
			spends = append(spends, spend{at: row.Time, amount: row.AmountFen})
		}
	}
	return spends, nil
}

// todaysLog reads the purchase log newest first, one record at a time,
// and stops at the first record before today (or the log's end): the
// daily sum needs no more, and each record is an APDU with the card in
// the field. A record that does not parse may be of today: an error.
func (p *Purchaser) todaysLog(t apdu.Transmitter, today string) ([]epurse.LogRecord, error) {
	var recs []epurse.LogRecord
	for n := 1; n <= epurse.MaxLogRecords; n++ {
		one, err := epurse.ReadLogFrom(t, p.logFile(), n, n)
		var bad *epurse.LogRecordError
		switch {
		case errors.As(err, &bad):
			return nil, fmt.Errorf("the card's log record %d does not parse: today's spending cannot be summed for the daily limit: %w", n, err)
		case errors.Is(err, apdu.ErrFileNotFound):
			return recs, nil // no log file: nothing spent by the card's word
		case err != nil:
			return nil, fmt.Errorf("reading the card's log for the daily limit: %w", err)
		}
		if len(one) == 0 || one[0].Time.Format("20060102") < today {
			return recs, nil
		}
		recs = append(recs, one[0])
	}
	return recs, nil
}

// isPurchase reports a log record of money spent: an ED or EP purchase, or
// a composite (transport) purchase.
func isPurchase(t epurse.TxType) bool {
	return t == epurse.TxEDPurchase || t == epurse.TxEPPurchase || t == epurse.TxComposite
}

func (p *Purchaser) finish(ctx context.Context, id, state, tac, detail string) {
	if err := p.Store.Finish(ctx, id, state, tac, detail); err != nil {
		p.logger().Error("journal update failed; the next tap resolves it from the card", "journal", id, "state", state, "err", err)
	}
}

// storeDone records a purchase row done, with its receipt when receipts
// are on.
func (p *Purchaser) storeDone(ctx context.Context, cr *CardRead, row offline.Row, detail string) error {
	// The receipt reads the split from the row's detail: the one it is
	// given, else ("" keeps it) the one the row has.
	if detail != "" {
		detail = withSplit(row, detail)
		row.Detail = detail
	}
	return recordDone(ctx, p.Store, p.Receipt, p.logger(), cr, row, detail)
}
