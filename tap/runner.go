package tap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/redact"
)

// Outcome names how a tap ended, in words an operator can search logs for.
type Outcome string

// Outcomes of a tap.
const (
	OutcomeOK          Outcome = "ok"
	OutcomeRemoved     Outcome = "card_removed_too_early"
	OutcomeTimeout     Outcome = "timeout"
	OutcomeBlocked     Outcome = "application_blocked"
	OutcomeNotEPurse   Outcome = "not_an_epurse_card"
	OutcomeNoService   Outcome = "pcscd_unavailable"
	OutcomeReaderGone  Outcome = "reader_gone"
	OutcomeCardFailure Outcome = "card_error"
	OutcomeDenied      Outcome = "card_denied"
	OutcomeExpired     Outcome = "card_expired"
	// OutcomeNotRecognised: the card was read and shown, but cardd could
	// not form its number or read its validity, so no money moved.
	OutcomeNotRecognised Outcome = "card_not_recognised"
	// POS outcomes: the sale was not paid on this tap.
	OutcomeInsufficient Outcome = "insufficient_balance"
	OutcomePINRequired  Outcome = "pin_required"
	OutcomeWrongPIN     Outcome = "wrong_pin"
	OutcomeNoSAM        Outcome = "psam_unavailable"
	// OutcomePSAMRefused: the PSAM refused the purchase before the debit
	// (a PSAM profile that does not fit it); nothing moved.
	OutcomePSAMRefused Outcome = "psam_refused"
	OutcomeSaleInDoubt Outcome = "sale_in_doubt"
	// Meal periods (meals.go): the sale was refused before the card changed.
	OutcomeOutsidePeriods Outcome = "outside_meal_periods"
	OutcomeNotMealPrice   Outcome = "not_a_meal_price"
	OutcomeMealLimit      Outcome = "meal_limit"
	// OutcomeMAC2Alarm: the sale was paid (the card debited and gave its
	// TAC), but the PSAM did not accept, or could not check, the card's
	// MAC2; the row carries MAC2Alarm for the host to judge.
	OutcomeMAC2Alarm Outcome = "mac2_alarm"
	// Door outcome: the door stayed shut (the decision's reason is logged).
	OutcomeAccessDenied Outcome = "access_denied"
	OutcomeRelayFailed  Outcome = "door_relay_failed"
	// OutcomeReaderBusy: the reader still holds an exchange abandoned by an
	// earlier tap (a card that stopped answering), so no session opens.
	OutcomeReaderBusy Outcome = "reader_busy"
	// OutcomeStopped: the daemon stopped in the middle of the tap.
	OutcomeStopped Outcome = "stopped"
)

// Result is one tap, as it happened.
type Result struct {
	Reader string
	ATR    []byte
	// Start is when the monitor saw the card arrive: the tap's clock starts
	// there, so the figures include pcscd and session set-up.
	Start time.Time
	// ToBalance and ToDone are the times from Start until the balance was
	// known and until the read ended.
	ToBalance, ToDone time.Duration
	// ToLeave is the time from Start until the card was needed no more.
	// In a tap with a money step (a Loader or a Purchaser) it is the leave
	// point, right after that step's last card command was answered: what
	// follows (the PSAM's MAC2 check, the journal's last commit, the
	// history a kiosk shows, the report to the host) does not hold the
	// money. In any other tap it is when the card's last command was
	// answered. Zero when no command was sent.
	ToLeave time.Duration
	// CardAPDUs counts the commands sent to the card until ToLeave, GET
	// RESPONSE rounds included; the PSAM's are not counted.
	CardAPDUs int
	Read      *CardRead // the balance-time snapshot in OnBalance; complete in OnTap when Err is nil
	// Load is what the on-tap load did, when a Loader is set and the read
	// succeeded; Read.Balance is the balance before it, Load.Balance after.
	Load *LoadReport
	// Purchase is what the POS purchase step did, when a Purchaser is set
	// and the read and load succeeded.
	Purchase *PurchaseReport
	// Door is the door decision, in door mode.
	Door *DoorReport
	// Block is what the block step did with a card on the deny list
	// (block.go), when it ran.
	Block *BlockReport
	// Err is why the tap ended early: a failed read (Read nil), or a load
	// that could not finish or a refused card (Read set).
	Err error
}

// Outcome classifies r.Err.
func (r Result) Outcome() Outcome {
	switch err := r.Err; {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrMAC2Refused):
		// First: the PSAM's error inside may be a time-out or a card error,
		// but the sale is paid and only the alarm matters.
		return OutcomeMAC2Alarm
	case errors.Is(err, ErrSaleInDoubt):
		// Before removed and timeout, which it may wrap: the card may have
		// paid, and the cashier must take no other payment.
		return OutcomeSaleInDoubt
	case errors.Is(err, reader.ErrCardRemoved):
		return OutcomeRemoved
	case errors.Is(err, ErrCardBlocked), errors.Is(err, epurse.ErrApplicationBlocked):
		// Before denied: a card blocked on this tap was denied first.
		return OutcomeBlocked
	case errors.Is(err, ErrCardDenied):
		return OutcomeDenied
	case errors.Is(err, ErrCardExpired):
		return OutcomeExpired
	case errors.Is(err, ErrCardNotRecognised):
		return OutcomeNotRecognised
	case errors.Is(err, ErrInsufficientBalance), errors.Is(err, apdu.ErrInsufficientBalance):
		return OutcomeInsufficient
	case errors.Is(err, ErrPINRequired):
		return OutcomePINRequired
	case errors.Is(err, ErrOutsidePeriods):
		return OutcomeOutsidePeriods
	case errors.Is(err, ErrNoShift):
		return OutcomeNoShift
	case errors.Is(err, ErrNotMealPrice):
		return OutcomeNotMealPrice
	case errors.Is(err, ErrMealLimit):
		return OutcomeMealLimit
	case errors.Is(err, apdu.ErrWrongPIN), errors.Is(err, apdu.ErrAuthMethodBlocked):
		return OutcomeWrongPIN
	case errors.Is(err, ErrNoSAM):
		return OutcomeNoSAM
	case errors.Is(err, ErrPSAMRefused):
		return OutcomePSAMRefused
	case errors.Is(err, ErrAccessDenied):
		return OutcomeAccessDenied
	case errors.Is(err, ErrRelayFailed):
		return OutcomeRelayFailed
	case errors.Is(err, ErrTapTimeout), errors.Is(err, context.DeadlineExceeded):
		return OutcomeTimeout
	case errors.Is(err, context.Canceled):
		return OutcomeStopped
	case errors.Is(err, reader.ErrReaderBusy):
		return OutcomeReaderBusy
	case errors.Is(err, apdu.ErrFileInvalidated), errors.Is(err, apdu.ErrAppLocked), errors.Is(err, apdu.ErrNotSupported):
		return OutcomeBlocked
	case errors.Is(err, apdu.ErrFileNotFound):
		return OutcomeNotEPurse
	case errors.Is(err, reader.ErrNoService):
		return OutcomeNoService
	case errors.Is(err, reader.ErrReaderGone):
		return OutcomeReaderGone
	}
	return OutcomeCardFailure
}

// Runner turns reader events into taps: every card arriving on a reader with
// the card role is read, one at a time. The zero value watches every reader
// except none as card readers; set Roles.
type Runner struct {
	Roles   reader.Roles
	Read    ReadOptions
	Timeout time.Duration // per tap; zero means 3 s
	Logger  *slog.Logger  // nil means slog.Default()
	Monitor *reader.Monitor
	Dialer  *reader.Dialer
	// Loader, when set, writes the card's pending credits onto it on every
	// tap, after the read, in the same card session.
	Loader *Loader
	// Purchaser, when set (POS mode), debits the armed sale on every tap,
	// after the load, in the same card session, through the PSAM in the
	// reader with the SAM role.
	Purchaser *Purchaser
	// Door, when set (door mode), decides each tap at the door before
	// anything else; the Loader then runs only for an e-purse card let in.
	Door *Door
	// now is LoadNow's (loadnow.go): the cards on the readers, and the
	// requests for Run.
	now loadNowState

	// OnEvent, OnBalance and OnTap, when set, are called from Run's goroutine;
	// they must not block for long, since the next tap waits for them.
	OnEvent   func(reader.Event)
	OnBalance func(Result)
	// OnLeave, when set, is called at a money tap's leave point (ToLeave):
	// the money step is over on the card, which may go; the journal's last
	// commit, a PSAM's MAC2 check and the history reads may follow, so
	// the Result is the money's, not yet the tap's (OnTap).
	OnLeave func(Result)
	OnTap   func(Result)
	// OnAPDU, when set, gets each APDU exchange's round trip (for metrics).
	OnAPDU func(time.Duration)
	// WrapCard, when set, wraps each tap's card transmitter, so that every
	// command of the tap goes through it: cardd dump records a tap so.
	WrapCard func(apdu.Transmitter) apdu.Transmitter
	// BeforeClose, when set, is called with that transmitter and the tap's
	// result once the tap is done with the card, the session still open and
	// the tap's deadline still on: cardd dump probes a card it could not
	// read.
	BeforeClose func(apdu.Transmitter, Result)

	alive atomic.Int64 // Unix nanoseconds of the loop's last turn
	// samReader is the reader with the SAM role now present ("" none);
	// only Run's goroutine touches it.
	samReader string
	// sam is the PSAM connection kept between purchases, with the PSAM's
	// set-up (samlink.go); only Run's goroutine touches it.
	sam samLink
}

// aliveEvery is how often an idle Run marks itself alive.
const aliveEvery = 2 * time.Second

// Alive is when Run's loop last turned: every aliveEvery when idle, and
// after each tap. A loop that has not turned for much longer than a tap's
// timeout is wedged (a watchdog restarts such a daemon). Zero before Run.
func (r *Runner) Alive() time.Time {
	n := r.alive.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Run watches readers and handles taps until ctx is done. It never stops for
// a card or reader failure, nor for pcscd going away: the monitor reconnects.
func (r *Runner) Run(ctx context.Context) error {
	log := r.logger()
	mon := r.Monitor
	if mon == nil {
		mon = &reader.Monitor{Logger: log}
	}
	dialer := r.Dialer
	if dialer == nil {
		dialer = &reader.Dialer{Logger: log}
		defer dialer.Close()
	}
	defer r.sam.forget() // before the dialer closes

	events := make(chan reader.Event, 16)
	monDone := make(chan error, 1)
	go func() { monDone <- mon.Run(ctx, events) }()
	tick := time.NewTicker(aliveEvery)
	defer tick.Stop()
	for {
		r.alive.Store(time.Now().UnixNano())
		select {
		case <-tick.C:
		case <-ctx.Done():
			<-monDone
			return nil
		case err := <-monDone:
			if ctx.Err() != nil {
				// The monitor saw the cancellation first: a clean stop, not
				// a failure (SIGTERM must exit 0).
				return nil
			}
			return err
		case ev := <-events:
			r.event(ev)
			if ev.Kind == reader.CardInserted && r.Roles.Of(ev.Reader) == reader.RoleCard {
				r.tap(ctx, dialerOpen(dialer), ev)
			}
		case req := <-r.requests():
			r.loadNow(ctx, dialerOpen(dialer), req)
		}
	}
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

func (r *Runner) event(ev reader.Event) {
	log := r.logger()
	switch ev.Kind {
	case reader.CardInserted, reader.CardRemoved:
		log.Debug("reader event", "event", ev.Kind.String(), "reader", ev.Reader, "role", r.Roles.Of(ev.Reader).String())
	case reader.ServiceLost:
		log.Warn("pcscd connection lost", "event", ev.Kind.String())
	default:
		log.Info("reader event", "event", ev.Kind.String(), "reader", ev.Reader, "role", r.Roles.Of(ev.Reader).String())
	}
	r.present(ev)
	if r.Roles.Of(ev.Reader) == reader.RoleSAM {
		switch ev.Kind {
		case reader.ReaderAdded:
			r.samReader = ev.Reader
		case reader.ReaderRemoved:
			if r.samReader == ev.Reader {
				r.samReader = ""
			}
		}
	}
	r.sam.event(ev, r.Roles.Of(ev.Reader))
	if r.OnEvent != nil {
		r.OnEvent(ev)
	}
}

// openFunc opens a session with the card in the named reader, inside a
// PC/SC transaction: the dialer's, or a simulated card's in a test.
type openFunc func(ctx context.Context, reader string) (SAMSession, error)

// dialerOpen is d.Open as an openFunc.
func dialerOpen(d *reader.Dialer) openFunc {
	return func(ctx context.Context, name string) (SAMSession, error) {
		s, err := d.Open(ctx, name)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

// samOpener opens the PSAM for one purchase, on the connection kept from
// the last one when it still holds (samLink), or nil when no SAM reader is
// present.
func (r *Runner) samOpener(ctx context.Context, open openFunc) func() (SAMSession, error) {
	name := r.samReader
	if name == "" {
		return nil
	}
	r.sam.log = r.logger()
	return func() (SAMSession, error) { return r.sam.open(ctx, open, name) }
}

// tap is one card in the reader named by ev: it opens the card session,
// runs the steps of the Runner's mode in it (steps), closes it, logs the
// outcome and reports it through the hooks.
func (r *Runner) tap(ctx context.Context, open openFunc, ev reader.Event) Result {
	return r.tapCard(ctx, open, ev, "")
}

// tapCard is tap, for the card numbered same when it is not "": a card
// with another number is read and shown, and nothing else (LoadNow).
func (r *Runner) tapCard(ctx context.Context, open openFunc, ev reader.Event, same string) Result {
	res := Result{Reader: ev.Reader, ATR: ev.ATR, Start: ev.Time}
	// The tap's card calls (the PSAM's too) end at the deadline, even one
	// that the card never answers: it is abandoned, and the tap ends timeout.
	deadline := res.Start.Add(r.timeout())
	// Not cancelled by a stop: a CREDIT FOR LOAD or DEBIT FOR PURCHASE cut
	// off by a restart would leave money in doubt. A stop waits for the tap
	// at most until its deadline.
	cardCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	if s, err := open(cardCtx, ev.Reader); err != nil {
		res.Err = err
	} else {
		var t apdu.Transmitter = deadlineTransmitter{t: s, deadline: deadline, observe: r.OnAPDU}
		if r.WrapCard != nil {
			t = r.WrapCard(t)
		}
		clock := &leaveClock{t: t}
		t = clock
		after := r.steps(ctx, t, &res, r.samOpener(cardCtx, open), func() { r.leave(clock, &res) }, same)
		if !clock.marked {
			// No money step: the card was needed until its last answer.
			clock.mark(&res)
		}
		if r.BeforeClose != nil {
			r.BeforeClose(t, res)
		}
		if cerr := s.Close(); cerr != nil {
			r.logger().Warn("closing card session", "reader", ev.Reader, "err", cerr)
		}
		// The reader is free before the work that needs the card no more.
		if err := after.run(); err != nil && res.Err == nil {
			res.Err = err
		}
	}
	res.ToDone = time.Since(res.Start)
	r.logTap(res)
	if r.OnTap != nil {
		r.OnTap(res)
	}
	return res
}

// leaveClock counts a tap's card commands and notes when the last was
// answered: the moment the card could have left (Result.ToLeave).
type leaveClock struct {
	t      apdu.Transmitter
	n      int
	last   time.Time
	marked bool // the leave point is set (mark)
}

// mark sets res's leave point: the commands sent so far, and when the last
// was answered.
func (c *leaveClock) mark(res *Result) {
	c.marked = true
	res.CardAPDUs = c.n
	if c.n > 0 {
		res.ToLeave = c.last.Sub(res.Start)
	}
}

// leave is a money tap's leave point: it is marked, and OnLeave told.
func (r *Runner) leave(c *leaveClock, res *Result) {
	c.mark(res)
	if r.OnLeave != nil {
		r.OnLeave(snapshot(*res))
	}
}

// snapshot is res with its reports copied: the tap goes on filling them
// (the read's history, the purchase's MAC2 check after the card has left)
// while a hook may hand the snapshot to another goroutine.
func snapshot(res Result) Result {
	if res.Read != nil {
		c := *res.Read
		c.Log = slices.Clone(res.Read.Log)
		c.Notes = slices.Clone(res.Read.Notes)
		res.Read = &c
	}
	if res.Load != nil {
		c := *res.Load
		c.Recovered, c.Loads = slices.Clone(res.Load.Recovered), slices.Clone(res.Load.Loads)
		res.Load = &c
	}
	if res.Purchase != nil {
		c := *res.Purchase
		c.Recovered = slices.Clone(res.Purchase.Recovered)
		res.Purchase = &c
	}
	if res.Door != nil {
		c := *res.Door
		res.Door = &c
	}
	return res
}

func (c *leaveClock) Transmit(cmd []byte) ([]byte, error) {
	resp, err := c.t.Transmit(cmd)
	c.n++
	c.last = time.Now()
	return resp, err
}

func (r *Runner) timeout() time.Duration {
	if r.Timeout <= 0 {
		return 3 * time.Second
	}
	return r.Timeout
}

// steps are what a tap does in the card session, in this order, each step
// running only when the Runner has its part (Door, Loader, Purchaser):
//
//   - read: the card's number, validity and balance (readHead), published
//     the moment they are known (OnBalance); at a POS with a sale armed,
//     the balance is left to the purchase's INITIALIZE (defersBalance)
//     and published after the money step (balanceKnown);
//   - decide (door): on that balance, or on the card's UID when it has no
//     e-purse;
//   - money, on an e-purse card: load its credits (Loader), then pay the
//     armed sale (Purchaser), or settle a refused card's unfinished
//     purchases (Purchaser.Settle) and close an expired one the host
//     asked to close (settleAndClose); on a card with no e-purse, at a POS
//     with an M1 wallet (readsM1): read the wallet, load, pay (m1);
//   - block, on an e-purse card refused for the deny list, when the host
//     can be asked (Loader.BlockHost): its application blocked on the chip
//     with the host's MAC (block.go), so terminals that never pulled the
//     list refuse it too;
//   - leave (a tap with a money step): the card is needed for the money no
//     more; leave marks the point (Result.ToLeave) and tells OnLeave;
//   - history, when Read.History: the cardholder file and the log, which
//     the money did not need;
//   - after the card: what the money steps left for then (afterCard: the
//     PSAM's MAC2 check, the journal's last commit with its receipt, the
//     load's completion to the host), returned for tap to run once the
//     card session is closed.
//
// Each step records what it did in res, and its error in res.Err. With
// same set (LoadNow), a card whose number is not same stops after the read.
func (r *Runner) steps(ctx context.Context, t apdu.Transmitter, res *Result, openSAM func() (SAMSession, error), leave func(), same string) *afterCard {
	after := &afterCard{}
	doorErr := r.read(ctx, t, res)
	if same != "" && !sameCard(res, same) {
		return after
	}
	if r.Door != nil {
		r.decide(ctx, t, res, doorErr)
	}
	if res.Read == nil {
		if r.readsM1(*res) {
			r.m1(ctx, t, res, after)
			leave()
		}
		return after
	}
	if r.Loader != nil || r.Purchaser != nil {
		if res.Err == nil {
			// Shown, but not charged or loaded: see Transactable.
			res.Err = res.Read.Transactable()
		}
		if res.Read.balanceDeferred {
			r.settleFirst(ctx, t, res)
		}
		deferred := res.Read.balanceDeferred
		r.money(ctx, t, res, openSAM, after)
		if deferred {
			r.balanceKnown(t, res)
		}
		r.block(ctx, t, res)
		leave()
	}
	if r.Read.History {
		r.history(t, res)
	}
	return after
}

// money is the e-purse's money step: load, then pay.
func (r *Runner) money(ctx context.Context, t apdu.Transmitter, res *Result, openSAM func() (SAMSession, error), after *afterCard) {
	if res.Err == nil && r.Loader != nil {
		rep, err := r.Loader.apply(ctx, t, res.Read, after)
		res.Load, res.Err = &rep, err
	}
	if r.Purchaser != nil {
		r.pay(ctx, t, res, openSAM, after)
	}
}

// defersBalance reports whether a tap leaves the balance to the
// purchase's INITIALIZE FOR PURCHASE, which answers it (readHead): at a
// POS with a sale armed before the card came, when nothing before the
// purchase needs the balance. A Loader with a host may load a top-up
// first (its balance cap is checked before INITIALIZE FOR LOAD); a
// Wallet needs an e-purse whose GET BALANCE fails to read the card as an
// M1 wallet (readsM1); a door decides on the read; without a SAM reader
// no purchase runs. An unarmed POS tap is a balance inquiry: it reads the
// balance.
func (r *Runner) defersBalance() bool {
	p := r.Purchaser
	if p == nil || p.Till == nil || p.Wallet != nil || r.Door != nil || r.samReader == "" || (r.Loader != nil && r.Loader.Host != nil) {
		return false
	}
	sale, armed := p.Till.Armed()
	// A split sale's card part is the balance: it is read first.
	return armed && !sale.Split
}

// settleFirst reads the deferred balance before the money step when the
// journal holds an unfinished load or purchase of the card: its recovery
// starts from the card's state (money rule 3), as on any other tap. A
// journal that cannot tell reads it too.
func (r *Runner) settleFirst(ctx context.Context, t apdu.Transmitter, res *Result) {
	rows, err := r.Purchaser.Store.Unresolved(ctx, res.Read.Info.CardNumber)
	if err == nil && len(rows) == 0 {
		return
	}
	if err := res.Read.readDeferred(t); err != nil {
		if res.Err == nil {
			res.Err = err
		}
		return
	}
	res.ToBalance = time.Since(res.Start)
	if r.OnBalance != nil {
		r.OnBalance(snapshot(*res))
	}
}

// balanceKnown completes a tap whose read deferred the balance, after the
// money step: the purchase's INITIALIZE answered it, or (the tap ended
// before one: a refused card, a sale refused or not taken) GET BALANCE
// reads it now, the card still there. The load's and the purchase's
// balances, which the deferred read left at zero, are then the card's: no
// money moved without an INITIALIZE. OnBalance is told at last.
func (r *Runner) balanceKnown(t apdu.Transmitter, res *Result) {
	cr := res.Read
	if cr.balanceDeferred {
		if err := cr.readDeferred(t); err != nil {
			// The card left: the tap's own error says why; the screen has
			// no balance to show.
			cr.note("balance not read: %v", err)
			return
		}
		if p := res.Purchase; p != nil {
			p.Balance = cr.Balance
			if errors.Is(res.Err, ErrInsufficientBalance) && p.Sale.ID != "" {
				// The card's 9401 to INITIALIZE, said as the cashier
				// reads it, now that the balance is known.
				res.Err = insufficient(cr.Balance, p.Sale)
			}
		}
	}
	if res.Load != nil {
		res.Load.Balance = cr.Balance
	}
	res.ToBalance = time.Since(res.Start)
	if r.OnBalance != nil {
		r.OnBalance(snapshot(*res))
	}
}

// history reads the cardholder file and the log after the money. When
// the tap moved money (or tried to), a history that does not read costs
// the history alone, noted on the read: the card may leave after the
// money. Otherwise (a read-only tap) it is the tap's error, as a read
// that failed.
func (r *Runner) history(t apdu.Transmitter, res *Result) {
	err := res.Read.readHistory(t, r.Read)
	switch {
	case err == nil:
	case r.Loader != nil || r.Purchaser != nil:
		res.Read.note("history not read: %v", err)
		r.logger().Info("the card left before its history was read; the money was done", "card", redact.CardNumber(res.Read.Info.CardNumber), "err", err)
	case res.Err == nil:
		res.Err = err
	}
}

// read is a tap's first step: it reads the card's number, validity and
// balance into res and calls OnBalance with them the moment they are
// known. At a door the decision is taken right then too, since the number
// is known. read returns that decision's error, for decide.
func (r *Runner) read(ctx context.Context, t apdu.Transmitter, res *Result) (doorErr error) {
	res.Read, res.Err = readHead(t, r.Read, r.defersBalance())
	if res.Read == nil || res.Read.balanceDeferred {
		return nil // published when known (balanceKnown)
	}
	res.ToBalance = time.Since(res.Start)
	if r.Door != nil {
		rep, err := r.Door.Decide(ctx, t, res.Start, res.Read, nil)
		res.Door, doorErr = &rep, err
	}
	if r.OnBalance != nil {
		r.OnBalance(snapshot(*res))
	}
	return doorErr
}

// decide is the door's step. Decided on the balance (doorErr that
// decision's error), a read that failed after it only costs the load
// (res.Read is then nil); a read that failed before it leaves the door to
// know the card by its UID (Door.Decide).
func (r *Runner) decide(ctx context.Context, t apdu.Transmitter, res *Result, doorErr error) {
	if res.Door != nil {
		res.Err = doorErr
		return
	}
	rep, err := r.Door.Decide(ctx, t, res.Start, res.Read, res.Err)
	res.Door, res.Err = &rep, err
}

// pay is the POS step on an e-purse card, after the load, from the
// balance the load left: the armed sale is charged to a card that passed
// every step so far. A denied or expired card pays nothing, but its
// unfinished purchases are still settled: that changes nothing on it.
func (r *Runner) pay(ctx context.Context, t apdu.Transmitter, res *Result, openSAM func() (SAMSession, error), after *afterCard) {
	if loadsOnly(ctx) {
		return // a refund's tap (RefundNow): an armed sale waits for the next
	}
	balance := res.Read.Balance
	if res.Load != nil {
		balance = res.Load.Balance
	}
	switch {
	case res.Err == nil:
		res.Purchase = &PurchaseReport{}
		res.Err = r.Purchaser.charge(ctx, t, res.Read, balance, openSAM, res.Purchase, after)
	case errors.Is(res.Err, ErrCardExpired) && !errors.Is(res.Err, ErrCardDenied) && r.Purchaser.CloseCards:
		// An expired card pays nothing, but the host's close of it
		// still runs: the holder's balance goes back as a refund.
		res.Purchase = &PurchaseReport{}
		closing, err := r.Purchaser.settleAndClose(ctx, t, res.Read, balance, openSAM, res.Purchase, after)
		if closing {
			res.Err = err
		} else if err != nil {
			r.logger().Warn("settling an expired card's unfinished purchases", "err", err)
		}
	case errors.Is(res.Err, ErrCardDenied), errors.Is(res.Err, ErrCardExpired):
		rep, err := r.Purchaser.Settle(ctx, t, res.Read, balance)
		res.Purchase = &rep
		if err != nil {
			r.logger().Warn("settling a refused card's unfinished purchases", "err", err)
		}
	}
}

// readsM1 reports whether a tap whose e-purse read failed reads the card
// as a MIFARE Classic (M1) wallet instead. It does when the read failed on
// a card that still answers (uidFallback: not pulled away, not out of
// time, the reader and pcscd still there), so that the card simply has no
// e-purse; when no door decides the tap (a door knows such a card by its
// UID, Door.Decide, and loads e-purse cards only); and when a Purchaser
// has a Wallet to read it with (M1 wallets pay, and take top-ups, at a POS
// only).
func (r *Runner) readsM1(res Result) bool {
	return res.Err != nil && res.Read == nil && r.Door == nil &&
		r.Purchaser != nil && r.Purchaser.Wallet != nil && uidFallback(res.Err) &&
		!errors.Is(res.Err, epurse.ErrApplicationBlocked) // an e-purse, blocked: not a wallet
}

// m1 is a tap of an M1 wallet at a POS, in the e-purse's order: read the
// wallet (Purchaser.ReadM1, which settles its unfinished purchases before
// a load moves its balance), load its top-ups (Loader.ApplyM1), pay the
// sale (Purchaser.ChargeM1). Its report replaces the failed e-purse read's
// error. A load's last commit and its completion are left to after.
func (r *Runner) m1(ctx context.Context, t apdu.Transmitter, res *Result, after *afterCard) {
	rep, st, err := r.Purchaser.ReadM1(ctx, t)
	if err == nil && r.Loader != nil {
		lrep, lerr := r.Loader.applyM1(ctx, t, r.Purchaser.Wallet, rep.Card, st, after)
		res.Load, err = &lrep, lerr
		rep.Balance = lrep.Balance
	}
	if err == nil && !loadsOnly(ctx) {
		rep, err = r.Purchaser.chargeM1(ctx, t, rep, after)
	}
	res.Purchase, res.Err = &rep, err
}

// logTap writes the one line per tap an operator reads. The card number is
// masked; no key or PIN ever passes through here.
func (r *Runner) logTap(res Result) {
	attrs := []any{
		"reader", res.Reader,
		"outcome", string(res.Outcome()),
		"ms", res.ToDone.Milliseconds(),
	}
	if d := res.Door; d != nil && d.Decision.Reason != "" {
		attrs = append(attrs, "door", string(d.Decision.Reason), "door_card", redact.CardNumber(d.Decision.Card),
			"door_text", d.Decision.Text, "opened", d.Opened)
		if d.Opened {
			attrs = append(attrs, "to_open_ms", float64(d.ToOpen.Microseconds())/1000)
		}
	}
	if res.Read == nil {
		if pr := res.Purchase; pr != nil {
			attrs = purchaseAttrs(attrs, pr) // an M1 wallet
		}
		if res.Err != nil {
			r.logger().Warn("tap", append(attrs, "err", res.Err.Error())...)
		} else {
			r.logger().Info("tap", attrs...)
		}
		return
	}
	cr := res.Read
	holder := ""
	if cr.Holder != nil {
		holder = cr.Holder.Name
	}
	txs := make([]string, 0, len(cr.Log))
	for _, l := range cr.Log {
		txs = append(txs, FormatLogRecord(l))
	}
	attrs = append(attrs,
		"card", redact.CardNumber(cr.Info.CardNumber),
		"holder", holder,
		"valid_from", cr.Info.StartDate.String(),
		"valid_to", cr.Info.ExpiryDate.String(),
		"purse", cr.Purse.String(),
		"balance", money.Format(cr.Balance),
		"apdus", cr.APDUs,
		"balance_apdus", cr.BalanceAPDUs,
		"balance_ms", res.ToBalance.Milliseconds(),
		"transactions", txs,
	)
	if l := res.Load; l != nil {
		var loads []string
		for _, x := range l.Loads {
			if x.Applied {
				loads = append(loads, fmt.Sprintf("%s +%s applied", x.CreditID, money.Format(x.AmountFen)))
			} else {
				loads = append(loads, fmt.Sprintf("%s +%s waits: %s", x.CreditID, money.Format(x.AmountFen), x.Refused))
			}
		}
		for _, x := range l.Recovered {
			loads = append(loads, fmt.Sprintf("%s recovered from journal %s: applied=%v", x.CreditID, x.JournalID, x.Applied))
		}
		// A POS tap that loads and then pays has two balances after: the
		// purchase's is the line's balance_after, the load's its own key,
		// so the line holds no key twice.
		after := "balance_after"
		if res.Purchase != nil {
			after = "balance_after_load"
		}
		attrs = append(attrs, after, money.Format(l.Balance), "loads", loads, "host_offline", l.HostOffline)
	}
	if pr := res.Purchase; pr != nil {
		attrs = purchaseAttrs(attrs, pr)
	}
	if res.Err != nil {
		r.logger().Warn("tap", append(attrs, "err", res.Err.Error())...)
		return
	}
	r.logger().Info("tap", attrs...)
}

// purchaseAttrs adds a POS tap's purchase to its log line: never the PIN.
func purchaseAttrs(attrs []any, pr *PurchaseReport) []any {
	attrs = append(attrs, "balance_after", money.Format(pr.Balance))
	if pr.Period != "" {
		attrs = append(attrs, "period", pr.Period)
	}
	if pr.Class != "" {
		attrs = append(attrs, "class", pr.Class)
	}
	if pr.Sale.ID != "" {
		attrs = append(attrs, "sale", pr.Sale.ID, "sale_amount", money.Format(pr.Sale.AmountFen), "paid", pr.Paid,
			"spent_today", money.Format(pr.SpentToday), "pin_verified", pr.PINVerified)
	}
	if pr.Paid {
		attrs = append(attrs, "journal", pr.JournalID, "term_serial", pr.TermSerial, "mac2_verified", pr.MAC2Verified)
	}
	if d := pr.Discount; d != nil {
		attrs = append(attrs, "list_amount", money.Format(d.ListFen), "discount_percent", d.Percent)
	}
	if s := pr.Split; s != nil {
		attrs = append(attrs, "split_card_fen", s.CardFen, "split_collect_fen", s.CollectFen)
	}
	if c := pr.Close; c != nil {
		attrs = append(attrs, "closing", true, "refund_due", money.Format(c.RefundFen), "closed", c.Closed)
	}
	for _, x := range pr.Recovered {
		attrs = append(attrs, "recovered_purchase", fmt.Sprintf("%s -%s applied=%v", x.JournalID, money.Format(x.AmountFen), x.Applied))
	}
	return attrs
}
