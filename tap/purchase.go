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
)

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
	// when nil).
	SAMApps []psam.App
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
	// card; it is queued with the row that records it done.
	Receipt func(cr *CardRead, row offline.Row) (offline.NewReceipt, error)
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
	Recovered []PurchaseRecovery
	// Sale is the sale this tap took (zero when none was armed).
	Sale Sale
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
// paid on this tap; the report and the journal say what was done.
func (p *Purchaser) Charge(ctx context.Context, t apdu.Transmitter, cr *CardRead, balance int64, openSAM func() (SAMSession, error)) (PurchaseReport, error) {
	rep := PurchaseReport{Balance: balance}
	card := cr.Info.CardNumber
	if err := p.recover(ctx, t, cr, &rep); err != nil {
		return rep, err
	}
	sale, inDoubt, err := p.Till.forCard(card)
	if err != nil || sale.ID == "" {
		return rep, err
	}
	rep.Sale = sale
	if inDoubt != "" {
		row, err := p.Store.Get(ctx, inDoubt)
		if err != nil {
			return rep, err
		}
		switch row.State {
		case offline.StateDone:
			// The debit of the last tap happened: the sale is paid.
			p.Till.paid(sale.ID)
			rep.Paid, rep.JournalID, rep.TAC, rep.TermSerial = true, row.ID, row.TAC, row.TermSerial
			return rep, nil
		case offline.StateFailed:
			p.Till.clearDoubt(sale.ID)
		default:
			return rep, fmt.Errorf("%w: the card cannot tell whether journal row %s happened; the host settles it", ErrSaleInDoubt, row.ID)
		}
	}
	if sale.AmountFen > rep.Balance {
		return rep, fmt.Errorf("%w: the card holds %s, the sale is %s", ErrInsufficientBalance, money.Format(rep.Balance), money.Format(sale.AmountFen))
	}
	if limit := p.dailyLimit(); limit > 0 {
		// Only a limit needs the day's sum: it may cost log reads.
		spent, err := p.spentToday(ctx, t, cr)
		if err != nil {
			return rep, err
		}
		rep.SpentToday = spent
	}
	if limit := p.dailyLimit(); limit > 0 && rep.SpentToday+sale.AmountFen > limit {
		if sale.PIN == "" {
			return rep, fmt.Errorf("%w (spent today %s, sale %s, limit %s)", ErrPINRequired, money.Format(rep.SpentToday), money.Format(sale.AmountFen), money.Format(limit))
		}
		if err := epurse.VerifyPIN(t, sale.PIN); err != nil {
			return rep, fmt.Errorf("cardholder PIN: %w", err)
		}
		rep.PINVerified = true
	}
	if openSAM == nil {
		return rep, ErrNoSAM
	}
	sam, err := openSAM()
	if err != nil {
		return rep, fmt.Errorf("%w: %v", ErrNoSAM, err)
	}
	defer func() {
		if err := sam.Close(); err != nil {
			p.logger().Warn("closing PSAM session", "err", err)
		}
	}()
	return rep, p.debit(ctx, t, sam, cr, sale, &rep)
}

// debit is one purchase: PSAM ready, INITIALIZE FOR PURCHASE, MAC1 from the
// PSAM, write-ahead row, DEBIT FOR PURCHASE, MAC2 to the PSAM, row done.
func (p *Purchaser) debit(ctx context.Context, t apdu.Transmitter, sam apdu.Transmitter, cr *CardRead, sale Sale, rep *PurchaseReport) error {
	info, err := psam.Open(sam, p.SAMApps...)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoSAM, err)
	}
	init, err := epurse.InitPurchase(t, cr.Purse, 1, sale.AmountFen, info.TerminalID)
	if err != nil {
		if errors.Is(err, apdu.ErrInsufficientBalance) {
			return fmt.Errorf("%w: %v", ErrInsufficientBalance, err)
		}
		return err
	}
	when := p.now().Truncate(time.Second)
	serial, mac1, err := psam.InitForPurchase(sam, psam.PurchaseMAC1Input{
		Card: init, Amount: sale.AmountFen, Type: cr.Purse.PurchaseType(), When: when, CardSerial: cr.Info.AppSerial[:],
	})
	if err != nil {
		return fmt.Errorf("PSAM: %w", err)
	}
	// Rule 2: the row is on disk before the card can change.
	row, err := p.Store.Begin(ctx, offline.Row{
		Kind: offline.KindPurchase, State: offline.StateIntent, Card: cr.Info.CardNumber, Purse: cr.Purse.String(),
		Counter: init.OfflineCounter, BalanceFen: init.Balance, AmountFen: sale.AmountFen, TermSerial: serial,
		Time: when.Format(hostapi.TimeLayout),
	})
	if err != nil {
		return fmt.Errorf("journal before DEBIT FOR PURCHASE: %w", err)
	}
	rep.JournalID, rep.TermSerial = row.ID, serial
	tac, mac2, err := epurse.DebitPurchase(t, serial, when, mac1)
	if err != nil {
		if _, answered := apdu.SW(err); answered {
			p.finish(ctx, row.ID, offline.StateFailed, "", "card refused DEBIT FOR PURCHASE: "+err.Error())
			return fmt.Errorf("the card refused the debit: %w", err)
		}
		// No answer: the card settles it on its next tap (rule 3), and
		// until then the sale waits for this card.
		p.finish(ctx, row.ID, offline.StateUnknown, "", "no answer to DEBIT FOR PURCHASE: "+err.Error())
		p.Till.markInDoubt(sale.ID, cr.Info.CardNumber, row.ID)
		return err
	}
	detail := ""
	if err := psam.VerifyMAC2(sam, mac2); err != nil {
		// The card has debited and given its TAC: the purchase stands, and
		// the host, which verifies the TAC, judges it.
		detail = "PSAM refused the card's MAC2: " + err.Error()
		p.logger().Error("PSAM refused the card's MAC2; the purchase is recorded for the host to judge",
			"card", redact.CardNumber(cr.Info.CardNumber), "journal", row.ID, "err", err)
	} else {
		rep.MAC2Verified = true
	}
	row.State, row.TAC = offline.StateDone, hexUpper(tac[:])
	if err := p.storeDone(ctx, cr, row, detail); err != nil {
		p.logger().Error("journal update failed; the next tap resolves it from the card", "journal", row.ID, "err", err)
	}
	p.Till.paid(sale.ID)
	rep.Paid, rep.TAC = true, row.TAC
	rep.Balance = init.Balance - sale.AmountFen
	p.logger().Info("purchase debited", "card", redact.CardNumber(cr.Info.CardNumber), "journal", row.ID,
		"amount", money.Format(sale.AmountFen), "balance", money.Format(rep.Balance), "counter", init.OfflineCounter, "term_serial", serial)
	return nil
}

// recover settles this card's unfinished purchases from its offline counter:
// one more than the row's means the debit happened (its TAC comes from GET
// TRANSACTION PROVE), the same means it did not.
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
		counter, err := p.offlineCounter(t, cr, rep.Balance)
		if err != nil {
			return fmt.Errorf("probing the card's counter for journal row %s: %w", row.ID, err)
		}
		rec := PurchaseRecovery{JournalID: row.ID, AmountFen: row.AmountFen}
		switch counter {
		case row.Counter + 1:
			_, tac, err := epurse.GetTransactionProve(t, cr.Purse.PurchaseType(), row.Counter+1)
			if err != nil {
				return fmt.Errorf("proof of purchase %s: %w", row.ID, err)
			}
			row.State, row.TAC = offline.StateDone, hexUpper(tac[:])
			if err := p.storeDone(ctx, cr, row, "recovered: the card's counter moved"); err != nil {
				return err
			}
			rec.Applied = true
		case row.Counter:
			if err := p.Store.Finish(ctx, row.ID, offline.StateFailed, "", "recovered: the card's counter did not move, the debit did not happen"); err != nil {
				return err
			}
		default:
			p.finish(ctx, row.ID, offline.StateUnknown, "", fmt.Sprintf("card counter %d, journal counter %d: left to the host", counter, row.Counter))
			continue
		}
		recovered = true
		p.logger().Info("unfinished purchase resolved from the card", "card", redact.CardNumber(row.Card), "journal", row.ID, "applied", rec.Applied)
		rep.Recovered = append(rep.Recovered, rec)
	}
	if recovered {
		b, err := epurse.GetBalance(t, cr.Purse)
		if err != nil {
			return err
		}
		rep.Balance = b
	}
	return nil
}

// offlineCounter is the purse's offline counter now. INITIALIZE FOR
// PURCHASE shows it and changes nothing until a DEBIT follows; a card with
// nothing to spend refuses it (9401), and then the newest purchase in the
// log gives it.
func (p *Purchaser) offlineCounter(t apdu.Transmitter, cr *CardRead, balance int64) (uint16, error) {
	if balance > 0 {
		init, err := epurse.InitPurchase(t, cr.Purse, 1, 1, p.TerminalID)
		if err == nil {
			return init.OfflineCounter, nil
		}
		if !errors.Is(err, apdu.ErrInsufficientBalance) {
			return 0, err
		}
	}
	recs, err := epurse.ReadLog(t, p.logFile(), epurse.MaxLogRecords)
	if err != nil {
		return 0, err
	}
	for _, r := range recs { // newest first
		if r.Type == cr.Purse.PurchaseType() {
			return r.Counter + 1, nil
		}
	}
	return 0, nil
}

func (p *Purchaser) logFile() byte {
	if p.LogFile == 0 {
		return 0x18
	}
	return p.LogFile
}

// spentToday sums the card's purchases of today (the terminal's local day):
// those in the card's log, which holds every terminal's, and those of this
// terminal's journal the log no longer shows (it keeps 10 records). A
// purchase in both counts once, matched by purse type and counter.
func (p *Purchaser) spentToday(ctx context.Context, t apdu.Transmitter, cr *CardRead) (int64, error) {
	today := p.now().Format("20060102")
	recs := cr.Log
	if n := len(recs); n > 0 && n < epurse.MaxLogRecords && recs[n-1].Time.Format("20060102") == today {
		// Every record read is from today: older ones may be too.
		if p.LogContinues {
			more, err := epurse.ReadLogFrom(t, p.logFile(), n+1, epurse.MaxLogRecords)
			if err != nil {
				return 0, fmt.Errorf("reading the card's log for the daily limit: %w", err)
			}
			recs = append(slices.Clone(recs), more...)
		} else {
			all, err := epurse.ReadLog(t, p.logFile(), epurse.MaxLogRecords)
			if err != nil {
				return 0, fmt.Errorf("reading the card's log for the daily limit: %w", err)
			}
			recs = all
		}
	}
	type key struct {
		typ     epurse.TxType
		counter uint16
	}
	seen := map[key]bool{}
	var spent int64
	for _, r := range recs {
		if !isPurchase(r.Type) || r.Time.Format("20060102") != today {
			continue
		}
		seen[key{r.Type, r.Counter}] = true
		spent += r.Amount
	}
	rows, err := p.Store.PurchasesOn(ctx, cr.Info.CardNumber, today)
	if err != nil {
		return 0, err
	}
	for _, row := range rows {
		typ := epurse.PurseEP.PurchaseType()
		if row.Purse == epurse.PurseED.String() {
			typ = epurse.PurseED.PurchaseType()
		}
		if !seen[key{typ, row.Counter}] {
			spent += row.AmountFen
		}
	}
	return spent, nil
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
	return recordDone(ctx, p.Store, p.Receipt, p.logger(), cr, row, detail)
}
