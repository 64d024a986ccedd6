package tap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	psamsim "github.com/cardd/cardd/apdu/psam/sim"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader"
)

var samTermID = [6]byte{0x00, 0x00, 0x00, 0x00, 0x20, 0x02}

// posWorld is a POS on fakes: an in-memory card, an in-memory PSAM with the
// same issuer keys, a real store.
type posWorld struct {
	card  *epursesim.SimCard
	sam   *psamsim.SimPSAM
	store *offline.Store
	till  *Till
	p     *Purchaser
	now   time.Time
	// history: the read takes the cardholder file and the log, as a mode
	// that shows them does; otherwise the daily limit reads the log itself.
	history bool
}

func newPOSWorld(t *testing.T, history int) *posWorld {
	t.Helper()
	w := &posWorld{card: newTestCard(t, "王小明", history, nil), till: &Till{MaxPurchase: 50000}}
	f, err := psamsim.NewSAMFile(samTermID, testMasters)
	if err != nil {
		t.Fatal(err)
	}
	w.sam = psamsim.NewSimPSAM(f, "")
	w.store, err = offline.Open(filepath.Join(t.TempDir(), "cardd.db"), "000000000001")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.store.Close() })
	w.now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.Local)
	w.p = &Purchaser{Store: w.store, Till: w.till, TerminalID: testTermID, Now: func() time.Time { return w.now }, Logger: slog.New(slog.DiscardHandler)}
	return w
}

type samSession struct{ apdu.Transmitter }

func (samSession) Close() error { return nil }

// tap reads the card and charges, through card (which may cut the card off).
func (w *posWorld) tap(t *testing.T, card apdu.Transmitter) (PurchaseReport, error) {
	t.Helper()
	w.card.Reset()
	cr, err := ReadPurse(card, ReadOptions{History: w.history}, nil)
	if err != nil {
		return PurchaseReport{}, err
	}
	return w.p.Charge(context.Background(), card, cr, cr.Balance, func() (SAMSession, error) { return samSession{w.sam}, nil })
}

// cutAfter answers the first n commands and then behaves as a card that
// left the field.
// With deliver, the command at the cut reaches the card and only its
// answer is lost.
type cutAfter struct {
	t       apdu.Transmitter
	n       int
	deliver bool
}

func (c *cutAfter) Transmit(cmd []byte) ([]byte, error) {
	if c.n <= 0 {
		if c.deliver && c.n == 0 {
			_, _ = c.t.Transmit(cmd)
		}
		c.n--
		return nil, &reader.Error{Op: "transmit", Kind: reader.ErrCardRemoved, Err: errors.New("card left")}
	}
	c.n--
	return c.t.Transmit(cmd)
}

func TestPurchaseDebitsOnce(t *testing.T) {
	w := newPOSWorld(t, 0)
	if _, err := w.till.Arm(1250, ""); err != nil {
		t.Fatal(err)
	}
	rep, err := w.tap(t, w.card)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Paid || !rep.MAC2Verified || rep.Balance != 12345-1250 || rep.TAC == "" {
		t.Fatalf("report %+v", rep)
	}
	if got := w.card.File().EPBalance; got != 12345-1250 {
		t.Fatalf("card balance %d", got)
	}
	row, err := w.store.Get(context.Background(), rep.JournalID)
	if err != nil {
		t.Fatal(err)
	}
	if row.State != offline.StateDone || row.TAC != rep.TAC || row.TermSerial != rep.TermSerial || row.AmountFen != 1250 {
		t.Fatalf("journal row %+v", row)
	}
	// The TAC is the card's, over the PSAM's terminal id and serial; the
	// row keeps the PSAM's terminal id, which the host needs to verify the
	// TAC of a voided sale.
	if row.PSAMTerminal != hexUpper(samTermID[:]) {
		t.Fatalf("journal row's PSAM terminal %q, want %X", row.PSAMTerminal, samTermID)
	}
	when, _ := time.ParseInLocation("20060102150405", row.Time, time.Local)
	want, err := epurse.PurchaseTAC(w.card.File().Keys.DTK, 1250, epurse.TxEPPurchase, samTermID, rep.TermSerial, when)
	if err != nil || hexUpper(want[:]) != row.TAC {
		t.Fatalf("TAC %s, want %X (%v)", row.TAC, want, err)
	}
	// The sale is taken: a second tap pays nothing.
	rep, err = w.tap(t, w.card)
	if err != nil || rep.Paid || rep.Sale.ID != "" {
		t.Fatalf("second tap: %+v %v", rep, err)
	}
	if got := w.card.File().EPBalance; got != 12345-1250 {
		t.Fatalf("card balance %d after a second tap", got)
	}
}

func TestPurchaseInsufficientBalanceWritesNothing(t *testing.T) {
	w := newPOSWorld(t, 0)
	if _, err := w.till.Arm(12346, ""); err != nil {
		t.Fatal(err)
	}
	_, err := w.tap(t, w.card)
	if !errors.Is(err, ErrInsufficientBalance) {
		t.Fatalf("err %v", err)
	}
	if (Result{Err: err}).Outcome() != OutcomeInsufficient {
		t.Fatal("outcome")
	}
	if n, _ := w.store.QueueDepth(context.Background()); n != 0 {
		t.Fatalf("%d journal rows", n)
	}
	if got := w.card.File().EPBalance; got != 12345 {
		t.Fatalf("card balance %d", got)
	}
	if _, ok := w.till.Armed(); !ok {
		t.Fatal("the unpaid sale should stay armed")
	}
}

func TestPurchaseDailyLimitNeedsPIN(t *testing.T) {
	w := newPOSWorld(t, 0)
	w.p.DailyLimit = 3000
	for _, amount := range []int64{1000, 1500} {
		if _, err := w.till.Arm(amount, ""); err != nil {
			t.Fatal(err)
		}
		if rep, err := w.tap(t, w.card); err != nil || !rep.Paid {
			t.Fatalf("purchase of %d: %+v %v", amount, rep, err)
		}
	}
	// 25.00 spent; 6.00 more is over 30.00.
	if _, err := w.till.Arm(600, ""); err != nil {
		t.Fatal(err)
	}
	rep, err := w.tap(t, w.card)
	if !errors.Is(err, ErrPINRequired) || rep.SpentToday != 2500 {
		t.Fatalf("without PIN: %+v %v", rep, err)
	}
	if _, err := w.till.Arm(600, "654321"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.tap(t, w.card); !errors.Is(err, apdu.ErrWrongPIN) || (Result{Err: err}).Outcome() != OutcomeWrongPIN {
		t.Fatalf("wrong PIN: %v", err)
	}
	if _, err := w.till.Arm(600, epursesim.DefaultPIN); err != nil {
		t.Fatal(err)
	}
	rep, err = w.tap(t, w.card)
	if err != nil || !rep.Paid || !rep.PINVerified {
		t.Fatalf("with PIN: %+v %v", rep, err)
	}
	if got := w.card.File().EPBalance; got != 12345-3100 {
		t.Fatalf("card balance %d", got)
	}
	// Tomorrow the sum starts again.
	w.now = w.now.Add(24 * time.Hour)
	if _, err := w.till.Arm(2000, ""); err != nil {
		t.Fatal(err)
	}
	if rep, err := w.tap(t, w.card); err != nil || rep.SpentToday != 0 {
		t.Fatalf("next day: %+v %v", rep, err)
	}
}

// TestPurchaseDailyLimitBadLogRecord: a log record that does not parse may
// be a purchase of today, so the day's sum is not known: the sale is
// refused with the reason, and nothing is debited. With the history read
// (a mode that shows it) any record read counts; without, the daily sum
// reads from the newest record, so a garbled newest one is met.
func TestPurchaseDailyLimitBadLogRecord(t *testing.T) {
	for _, history := range []bool{true, false} {
		t.Run(fmt.Sprintf("history=%v", history), func(t *testing.T) { testDailyBadLogRecord(t, history) })
	}
}

func testDailyBadLogRecord(t *testing.T, history bool) {
	w := newPOSWorld(t, 3)
	w.history = history
	w.p.DailyLimit = 100000
	before := w.card.File().EPBalance
	if _, err := w.till.Arm(600, ""); err != nil {
		t.Fatal(err)
	}
	record := byte(2)
	if !history {
		record = 1
	}
	garbled := apdu.TransmitterFunc(func(cmd []byte) ([]byte, error) {
		resp, err := w.card.Transmit(cmd)
		if err == nil && cmd[1] == 0xB2 && cmd[2] == record {
			resp = append(bytes.Clone(resp[:22]), 0x90, 0x00)
		}
		return resp, err
	})
	rep, err := w.tap(t, garbled)
	if err == nil || !strings.Contains(err.Error(), "do not parse") || rep.Paid {
		t.Fatalf("sale with an unreadable log record: %+v %v", rep, err)
	}
	if got := w.card.File().EPBalance; got != before {
		t.Fatalf("card balance %d, want %d", got, before)
	}
	if n, _ := w.store.QueueDepth(context.Background()); n != 0 {
		t.Fatalf("%d journal rows", n)
	}
}

// TestPurchaseDailyLimitCountsJournalBeyondLog: purchases of today the card's
// cyclic log no longer holds still count, from the journal.
func TestPurchaseDailyLimitCountsJournalBeyondLog(t *testing.T) {
	for _, cont := range []bool{false, true} {
		t.Run(fmt.Sprintf("LogContinues=%v", cont), func(t *testing.T) { testDailyBeyondLog(t, cont) })
	}
}

func testDailyBeyondLog(t *testing.T, cont bool) {
	w := newPOSWorld(t, 0)
	w.p.DailyLimit = 100000
	w.p.LogContinues = cont
	for range 12 {
		if _, err := w.till.Arm(100, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := w.tap(t, w.card); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.till.Arm(100, ""); err != nil {
		t.Fatal(err)
	}
	rep, err := w.tap(t, w.card)
	if err != nil || rep.SpentToday != 1200 {
		t.Fatalf("%+v %v", rep, err)
	}
}

func TestTillRefusesBadSales(t *testing.T) {
	till := &Till{MaxPurchase: 50000}
	for _, c := range []struct {
		amount int64
		pin    string
	}{{0, ""}, {-5, ""}, {50001, ""}, {100, "12a4"}, {100, "123"}} {
		if _, err := till.Arm(c.amount, c.pin); !errors.Is(err, ErrBadSale) {
			t.Errorf("Arm(%d, %q) = %v", c.amount, c.pin, err)
		}
	}
	if _, ok := till.Armed(); ok {
		t.Fatal("a refused sale was armed")
	}
}

// TestPurchaseCardPulledAtEveryAPDU pulls the card after each command of a
// purchase tap in turn, then taps it again: the sale is debited exactly once,
// its row is done with the card's TAC, and no other row moved money.
func TestPurchaseCardPulledAtEveryAPDU(t *testing.T) {
	// How many commands a whole tap takes.
	probe := newPOSWorld(t, 3)
	probe.till.Arm(700, "")
	rec := &recorder{t: probe.card}
	if _, err := probe.tap(t, rec); err != nil {
		t.Fatal(err)
	}
	total := len(rec.cmds)
	for i := 0; i < 2*total; i++ {
		cut, deliver := i/2, i%2 == 1
		w := newPOSWorld(t, 3)
		before := w.card.File().EPBalance
		sale, _ := w.till.Arm(700, "")
		_, err := w.tap(t, &cutAfter{t: w.card, n: cut, deliver: deliver})
		if err == nil {
			t.Fatalf("cut %d of %d: no error", cut, total)
		}
		// The cashier may also press arm again for the same amount.
		if _, err := w.till.Arm(700, ""); err != nil && !errors.Is(err, ErrSaleInDoubt) {
			t.Fatalf("cut %d: re-arm: %v", cut, err)
		}
		rep, err := w.tap(t, w.card)
		if err != nil || (!rep.Paid && rep.Sale.ID == "") {
			t.Fatalf("cut %d: tap again: %+v %v", cut, rep, err)
		}
		if got := w.card.File().EPBalance; got != before-700 {
			t.Fatalf("cut %d (delivered %v): card balance %d, want one debit from %d", cut, deliver, got, before)
		}
		if _, ok := w.till.Armed(); ok {
			t.Fatalf("cut %d: sale still armed after it was paid", cut)
		}
		rows, err := w.store.PurchasesOn(context.Background(), testNumber, "20261123")
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0].State != offline.StateDone || rows[0].TAC == "" {
			t.Fatalf("cut %d (delivered %v): purchase rows %+v", cut, deliver, rows)
		}
		_ = sale
	}
	t.Logf("cut at each of %d commands, before and after the card got it", total)
}

func TestTillHoldsTheSaleDuringATap(t *testing.T) {
	till := &Till{}
	if _, err := till.Arm(500, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := till.take(testNumber); err != nil {
		t.Fatal(err)
	}
	if _, err := till.Arm(900, ""); !errors.Is(err, ErrSaleInTap) {
		t.Fatalf("Arm during a tap: %v", err)
	}
	if err := till.Disarm(); !errors.Is(err, ErrSaleInTap) {
		t.Fatalf("Disarm during a tap: %v", err)
	}
	till.release()
	if _, err := till.Arm(900, ""); err != nil {
		t.Fatalf("Arm after the tap: %v", err)
	}
}

// debitIndex is how many commands a purchase tap sends before DEBIT FOR
// PURCHASE (80 54).
func debitIndex(t *testing.T) int {
	t.Helper()
	w := newPOSWorld(t, 3)
	w.till.Arm(700, "")
	return debitIndexIn(t, w)
}

// debitIndexIn is the index of DEBIT FOR PURCHASE among the commands of a
// tap in w.
func debitIndexIn(t *testing.T, w *posWorld) int {
	t.Helper()
	rec := &recorder{t: w.card}
	if _, err := w.tap(t, rec); err != nil {
		t.Fatal(err)
	}
	for i, c := range rec.cmds {
		if c.INS == 0x54 {
			return i
		}
	}
	t.Fatal("no DEBIT FOR PURCHASE")
	return 0
}

// TestPurchaseCounterTakenElsewhere: the DEBIT never reached the card; the
// student then pays at another POS, which moves the card's counter by one.
// Back here, that counter is not taken for this sale: the row fails and the
// sale is charged, once.
func TestPurchaseCounterTakenElsewhere(t *testing.T) {
	at := debitIndex(t)
	w := newPOSWorld(t, 3)
	start := w.card.File().EPBalance
	w.till.Arm(700, "")
	if _, err := w.tap(t, &cutAfter{t: w.card, n: at}); err == nil {
		t.Fatal("no error with the DEBIT cut")
	}
	// Another terminal, same card: 3.00.
	other := newPOSWorld(t, 0)
	other.card = w.card
	other.till.Arm(300, "")
	if rep, err := other.tap(t, w.card); err != nil || !rep.Paid {
		t.Fatalf("purchase at the other POS: %+v %v", rep, err)
	}
	rep, err := w.tap(t, w.card)
	if err != nil || !rep.Paid || len(rep.Recovered) != 1 || rep.Recovered[0].Applied {
		t.Fatalf("back here: %+v %v", rep, err)
	}
	if got := w.card.File().EPBalance; got != start-300-700 {
		t.Fatalf("card holds %d, want %d", got, start-1000)
	}
}

// TestPurchaseInDoubtAfterRestart: the DEBIT happened but its answer was
// lost and the daemon restarted (a new, empty till). The sale is restored in
// doubt on that card: a different amount cannot be armed, and the card's
// next tap finds the debit done, paying the sale without a second debit.
func TestPurchaseInDoubtAfterRestart(t *testing.T) {
	at := debitIndex(t)
	w := newPOSWorld(t, 3)
	start := w.card.File().EPBalance
	w.till.Arm(700, "")
	if _, err := w.tap(t, &cutAfter{t: w.card, n: at, deliver: true}); err == nil {
		t.Fatal("no error with the DEBIT answer lost")
	}
	// Restart.
	w.till = &Till{}
	w.p.Till = w.till
	rows, err := w.store.InDoubt(context.Background(), offline.KindPurchase)
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows in doubt %+v %v", rows, err)
	}
	w.till.RestoreInDoubt(rows[0].Card, rows[0].ID, rows[0].AmountFen)
	if _, err := w.till.Arm(800, ""); !errors.Is(err, ErrSaleInDoubt) {
		t.Fatalf("another amount armed over a sale in doubt: %v", err)
	}
	rep, err := w.tap(t, w.card)
	if err != nil || !rep.Paid || len(rep.Recovered) != 1 || !rep.Recovered[0].Applied {
		t.Fatalf("tap after the restart: %+v %v", rep, err)
	}
	if got := w.card.File().EPBalance; got != start-700 {
		t.Fatalf("card holds %d, want one debit from %d", got, start)
	}
	if _, ok := w.till.Armed(); ok {
		t.Fatal("the sale is still armed")
	}
}

func TestWrongPINIsNotSentAgain(t *testing.T) {
	w := newPOSWorld(t, 0)
	w.p.DailyLimit = 100
	w.till.Arm(500, "999999")
	if _, err := w.tap(t, w.card); !errors.Is(err, apdu.ErrWrongPIN) {
		t.Fatalf("wrong PIN: %v", err)
	}
	if _, err := w.tap(t, w.card); !errors.Is(err, ErrPINRequired) {
		t.Fatalf("second tap: %v, want the PIN asked again", err)
	}
	if n := w.card.File().PINTriesLeft; n != epursesim.PINTries-1 {
		t.Fatalf("%d PIN tries left, want one used", n)
	}
}
