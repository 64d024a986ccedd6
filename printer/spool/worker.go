package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cardd/cardd/internal/backoff"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer"
)

// Printer is what the worker needs of a printer; *Line is the real one.
type Printer interface {
	// Write sends bytes and returns once they have left the line.
	Write(ctx context.Context, p []byte) error
	// State asks the printer's status; ErrNoAnswer when it does not answer.
	State(ctx context.Context) (printer.Status, error)
}

// Queue is what the worker needs of the store; *offline.Store is the real one.
type Queue interface {
	NextReceipt(ctx context.Context) (offline.Receipt, error)
	MarkSending(ctx context.Context, id int64) error
	MarkPrinted(ctx context.Context, id int64) error
	MarkNotPrinted(ctx context.Context, id int64, reason string) error
}

// Worker sends the queued receipts to the printer, oldest first, each until
// it is printed. Start it with Start after the store's RecoverSending.
type Worker struct {
	Queue   Queue
	Printer Printer
	// Render turns a queued receipt into the bytes for this printer.
	Render func(offline.Receipt) ([]byte, error)
	// StatusChecks asks the printer's state after each receipt and before
	// it, unless it follows at once a receipt the printer answered ready
	// after (see readyFor). Without it (a one-way cable, a printer answering wrongly) a receipt
	// counts as printed once written.
	StatusChecks bool
	// Poll is how often an idle worker looks at the queue (Kick wakes it
	// at once); 0 means 2s.
	Poll time.Duration
	// MaxBackoff caps the wait between attempts while the printer cannot
	// print; 0 means 30s.
	MaxBackoff time.Duration
	// Settle is for a printer that reports a stop some time after it took
	// the data: the status asked after a receipt is answered only once the
	// printer has the receipt's last byte (it reads a real-time query in
	// order with the data before it), and with Settle set the worker waits
	// that long after this answer and asks again; the second answer decides.
	// 0, the default, lets the first answer decide: a fixed wait after the
	// bytes left our side measured nothing the printer said.
	Settle time.Duration
	// OnState is called with each change of what the worker knows of the
	// printer (for the daemon's status and events); it must not block.
	OnState func(State)
	// Logger gets receipts printed and the printer's troubles; nil discards.
	Logger *slog.Logger

	kick   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
	last   State
	// readyAt is when the status asked after the last receipt said the
	// printer can print, zero when it did not or something came between.
	readyAt time.Time
}

// State is what the worker last learned of the printer.
type State struct {
	// Ready: the last check found it able to print.
	Ready bool
	// Answering: it answered the last status query (always false without
	// status checks).
	Answering bool
	// Status is its last answer.
	Status printer.Status
	// Problem says in words why it cannot print, or "".
	Problem string
}

func (w *Worker) logger() *slog.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Start runs the worker until Stop.
func (w *Worker) Start(ctx context.Context) {
	ctx, w.cancel = context.WithCancel(ctx)
	w.kick = make(chan struct{}, 1)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.run(ctx)
	}()
}

// Stop stops the worker and waits for it. A receipt being written is
// finished first only as far as its bytes are already on the line.
func (w *Worker) Stop() {
	if w.cancel != nil {
		w.cancel()
	}
	w.wg.Wait()
}

// Kick wakes an idle worker: a receipt was queued.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *Worker) run(ctx context.Context) {
	poll := cmp(w.Poll, 2*time.Second)
	maxBackoff := cmp(w.MaxBackoff, 30*time.Second)
	retry := backoff.Backoff{Base: 250 * time.Millisecond, Max: maxBackoff}
	for ctx.Err() == nil {
		printed, err := w.printOne(ctx)
		var wait time.Duration
		switch {
		case err != nil:
			wait = retry.Next()
		case printed:
			retry.Reset()
			continue // the next one at once
		default:
			retry.Reset()
			wait = poll
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-w.kick:
			if err != nil {
				// A new receipt does not bring paper back: keep the backoff.
				select {
				case <-ctx.Done():
				case <-t.C:
				}
			}
		}
		t.Stop()
	}
}

// errNotReady is returned by printOne when the printer cannot print.
var errNotReady = errors.New("printer not ready")

// readyFor is how long the ready answer to the status asked after a receipt
// stands for the check before the next one. A receipt taken at once (the
// queue was not empty) is sent a few milliseconds after that answer, about
// as long after it as after a check of its own: asking the same fact again
// would only keep the line idle. After an idle wait, an error or a longer
// pause the printer is asked again before sending.
const readyFor = 100 * time.Millisecond

// printOne prints the oldest queued receipt. It returns false, nil when the
// queue is empty.
func (w *Worker) printOne(ctx context.Context) (bool, error) {
	readyAt := w.readyAt
	w.readyAt = time.Time{} // it stands for the receipt taken next only
	r, err := w.Queue.NextReceipt(ctx)
	if errors.Is(err, offline.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		w.logger().Error("reading the print queue", "err", err)
		return false, err
	}
	data, err := w.Render(r)
	if err != nil {
		// Nothing was sent: it stays queued, and the error says why (a
		// character the printer's text mode cannot print, a missing font).
		w.logger().Error("rendering a receipt", "receipt", r.ID, "kind", r.Kind, "err", err)
		return false, err
	}
	if w.StatusChecks && (readyAt.IsZero() || time.Since(readyAt) >= readyFor) {
		if err := w.check(ctx); err != nil {
			return false, err
		}
	}
	if err := w.Queue.MarkSending(ctx, r.ID); err != nil {
		return false, err
	}
	if err := w.Printer.Write(ctx, data); err != nil {
		w.setState(State{Problem: err.Error()})
		w.notPrinted(ctx, r, err.Error())
		return false, err
	}
	if !w.StatusChecks {
		w.setState(State{Ready: true})
	} else if err := w.confirm(ctx, r); err != nil {
		return false, err
	}
	if err := w.Queue.MarkPrinted(ctx, r.ID); err != nil {
		w.logger().Error("marking a receipt printed", "receipt", r.ID, "err", err)
		return false, err
	}
	w.logger().Info("receipt printed", "receipt", r.ID, "kind", r.Kind, "journal_id", r.JournalID, "copy", r.Copy, "bytes", len(data))
	return true, nil
}

// confirm asks the printer's state once receipt r is written and returns
// errNotReady (wrapped, with the reason) when printing stopped during it,
// having put r back in the queue; nil means r counts printed.
//
// The bytes are out. A printer that stopped while printing them has a torn
// receipt at most, so it is sent again once the printer can print. Only a
// stop says so: paper that ran out just after the receipt (the roll sensor
// says "out", the printer goes offline) leaves it whole, and sending it
// again would print it twice.
func (w *Worker) confirm(ctx context.Context, r offline.Receipt) error {
	st, err := w.Printer.State(ctx)
	if err == nil && !stopped(st) && w.Settle > 0 {
		time.Sleep(w.Settle) // counted from the printer having it all
		st, err = w.Printer.State(ctx)
	}
	switch {
	case err != nil:
		// Every byte left the line and then the printer stopped
		// answering (its cable pulled just now). Nothing says the
		// receipt did not print, and sending it again would print it
		// twice if it did: it counts as printed, with a warning so a
		// person can reprint it if the paper shows otherwise.
		// The printer itself is not ready until a status query is
		// answered again: a kiosk must not offer a receipt now.
		w.setState(State{Problem: err.Error()})
		w.logger().Warn("receipt written but the printer did not confirm; counted printed", "receipt", r.ID, "err", err)
	case stopped(st):
		w.setState(State{Answering: true, Status: st, Problem: problem(st)})
		w.notPrinted(ctx, r, "printing stopped: "+problem(st))
		return fmt.Errorf("%w: %s", errNotReady, problem(st))
	default:
		w.setState(State{Answering: true, Status: st, Ready: st.CanPrint(), Problem: problem(st)})
		if st.CanPrint() {
			w.readyAt = time.Now()
		}
	}
	return nil
}

func (w *Worker) notPrinted(ctx context.Context, r offline.Receipt, reason string) {
	if err := w.Queue.MarkNotPrinted(ctx, r.ID, reason); err != nil {
		w.logger().Error("putting a receipt back in the queue", "receipt", r.ID, "err", err)
	}
}

// check asks the printer's state and returns errNotReady (wrapped, with the
// reason) unless it can print.
func (w *Worker) check(ctx context.Context) error {
	st, err := w.Printer.State(ctx)
	if err != nil {
		w.setState(State{Problem: err.Error()})
		return err
	}
	s := State{Answering: true, Status: st, Ready: st.CanPrint()}
	if !s.Ready {
		s.Problem = problem(st)
	}
	w.setState(s)
	if !s.Ready {
		return fmt.Errorf("%w: %s", errNotReady, s.Problem)
	}
	return nil
}

// stopped reports whether st, asked just after a receipt was sent, says
// the receipt did not print whole. A printer that can print did print it.
// Paper out alone (the roll sensor, DLE EOT 4, with the printer offline)
// does not say so: the roll can end just after a whole receipt. Paper end
// stop (DLE EOT 2 bit 5: stopped with data to print) does, and so does any
// other cause of not printing: an open cover, an error, offline for a
// reason other than paper. Those are checked before sending too, so only a
// change during the receipt can catch a whole one; then it prints again
// (logged), which beats losing it.
func stopped(st printer.Status) bool {
	if st.CanPrint() {
		return false
	}
	paperOnly := st.PaperOut && !st.PaperEndStop && !st.CoverOpen && !st.Error &&
		!st.RecoverableError && !st.CutterError && !st.UnrecoverableError && !st.AutoRecoverableError
	return !paperOnly
}

// problem says in words why a printer with status st cannot print.
func problem(st printer.Status) string {
	switch {
	case st.PaperOut || st.PaperEndStop:
		return "paper out"
	case st.CoverOpen:
		return "cover open"
	case st.CutterError:
		return "cutter error"
	case st.UnrecoverableError:
		return "unrecoverable error: needs service"
	case st.AutoRecoverableError:
		return "overheated: printing resumes by itself"
	case st.RecoverableError, st.Error:
		return "printer error"
	case st.Offline:
		return "offline"
	}
	return ""
}

func (w *Worker) setState(s State) {
	if s == w.last {
		return
	}
	w.last = s
	if s.Ready {
		w.logger().Info("printer ready")
	} else {
		w.logger().Warn("printer cannot print", "problem", s.Problem)
	}
	if w.OnState != nil {
		w.OnState(s)
	}
}

func cmp(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
