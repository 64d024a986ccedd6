package spool

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer"
)

// fakePrinter is a printer in memory: it keeps what it printed and can run
// out of paper after a given number of receipts.
type fakePrinter struct {
	mu       sync.Mutex
	status   printer.Status
	printed  []string
	outAfter int // paper runs out after this many receipts (0: never)
	silent   bool
	failNext error
}

func (p *fakePrinter) Write(ctx context.Context, b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.failNext; err != nil {
		p.failNext = nil
		return err
	}
	if !p.status.CanPrint() {
		// A printer without paper takes the bytes, prints nothing and says
		// printing stopped at paper end.
		p.status.PaperEndStop = p.status.PaperOut
		return nil
	}
	p.printed = append(p.printed, string(b))
	if p.outAfter > 0 && len(p.printed) == p.outAfter {
		// The roll ends just after this receipt: it is whole.
		p.status.PaperOut, p.status.Offline = true, true
	}
	return nil
}

func (p *fakePrinter) State(ctx context.Context) (printer.Status, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.silent {
		return printer.Status{}, ErrNoAnswer
	}
	return p.status, nil
}

func (p *fakePrinter) set(f func(p *fakePrinter)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func (p *fakePrinter) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.printed...)
}

func newQueue(t *testing.T, n int) *offline.Store {
	t.Helper()
	s, err := offline.Open(filepath.Join(t.TempDir(), "cardd.db"), "000000000001")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for i := range n {
		if _, err := s.QueueReceipt(context.Background(), offline.NewReceipt{Kind: "test", Body: fmt.Appendf(nil, "receipt %02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func startWorker(t *testing.T, q *offline.Store, p Printer, checks bool) *Worker {
	t.Helper()
	w := &Worker{Queue: q, Printer: p, StatusChecks: checks, Poll: 20 * time.Millisecond,
		MaxBackoff: 40 * time.Millisecond,
		Render:     func(r offline.Receipt) ([]byte, error) { return r.Body, nil }}
	w.Start(context.Background())
	t.Cleanup(w.Stop)
	return w
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Paper runs out in the middle of 20 receipts: the one being printed when
// it ran out comes again after the paper is back, none is lost and none
// printed twice.
func TestPaperOutMidQueue(t *testing.T) {
	q := newQueue(t, 20)
	p := &fakePrinter{outAfter: 7}
	startWorker(t, q, p, true)
	waitUntil(t, "paper out", func() bool { st, _ := p.State(context.Background()); return st.PaperOut })
	time.Sleep(100 * time.Millisecond) // the worker retries meanwhile
	if n := len(p.list()); n != 7 {
		t.Fatalf("%d printed while out of paper, want 7", n)
	}
	p.set(func(p *fakePrinter) { p.status = printer.Status{}; p.outAfter = 0 })
	waitUntil(t, "all 20 printed", func() bool { return len(p.list()) >= 20 })
	time.Sleep(50 * time.Millisecond)
	got := p.list()
	if len(got) != 20 {
		t.Fatalf("%d receipts printed, want 20", len(got))
	}
	for i, s := range got {
		if want := fmt.Sprintf("receipt %02d", i); s != want {
			t.Errorf("receipt %d is %q, want %q (in queue order, each once)", i, s, want)
		}
	}
	if n, _ := q.ReceiptsWaiting(context.Background()); n != 0 {
		t.Errorf("%d receipts still waiting", n)
	}
}

// A receipt written to a printer that went out of paper while taking it is
// not counted printed: the status after sending decides.
func TestNotReadyAfterSendingRequeues(t *testing.T) {
	q := newQueue(t, 1)
	p := &fakePrinter{}
	var once sync.Once
	torn := &tornPrinter{fakePrinter: p, onWrite: func() {
		once.Do(func() { p.status.PaperOut = true }) // out before the first is printed
	}}
	startWorker(t, q, torn, true)
	waitUntil(t, "attempt", func() bool {
		r, err := q.GetReceipt(context.Background(), 1)
		return err == nil && r.Attempts >= 1 && r.State == offline.ReceiptQueued
	})
	r, _ := q.GetReceipt(context.Background(), 1)
	if r.LastError == "" {
		t.Errorf("requeued without a reason: %+v", r)
	}
	if got := p.list(); len(got) != 0 {
		t.Fatalf("printed %q with no paper", got)
	}
	p.set(func(p *fakePrinter) { p.status = printer.Status{} })
	waitUntil(t, "printed", func() bool {
		r, _ := q.GetReceipt(context.Background(), 1)
		return r.State == offline.ReceiptPrinted
	})
}

type tornPrinter struct {
	*fakePrinter
	onWrite func()
}

func (p *tornPrinter) Write(ctx context.Context, b []byte) error {
	p.mu.Lock()
	p.onWrite()
	p.mu.Unlock()
	return p.fakePrinter.Write(ctx, b)
}

// A printer whose port vanishes just after a receipt (its cable pulled):
// the receipt counts printed, and the printer is not ready, and stays so,
// until a status query is answered again. Claiming ready would have the
// kiosk offer a receipt that cannot print.
func TestGoneAfterReceiptIsNotReady(t *testing.T) {
	q := newQueue(t, 1)
	p := &fakePrinter{}
	gone := &gonePrinter{fakePrinter: p}
	var mu sync.Mutex
	var states []State
	w := &Worker{Queue: q, Printer: gone, StatusChecks: true, Poll: 10 * time.Millisecond, Settle: time.Millisecond,
		Render:  func(r offline.Receipt) ([]byte, error) { return r.Body, nil },
		OnState: func(s State) { mu.Lock(); states = append(states, s); mu.Unlock() }}
	w.Start(context.Background())
	defer w.Stop()
	waitUntil(t, "printed", func() bool {
		r, _ := q.GetReceipt(context.Background(), 1)
		return r.State == offline.ReceiptPrinted
	})
	time.Sleep(50 * time.Millisecond) // idle polls of the empty queue
	mu.Lock()
	last := states[len(states)-1]
	mu.Unlock()
	if last.Ready || last.Problem == "" {
		t.Fatalf("after the port vanished the last state is %+v, want not ready with the reason", last)
	}
	// A receipt queued now waits; once the printer answers again it prints
	// and the printer is ready.
	if _, err := q.QueueReceipt(context.Background(), offline.NewReceipt{Kind: "test", Body: []byte("second")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if got := p.list(); len(got) != 1 {
		t.Fatalf("printed %q while the port was gone", got)
	}
	gone.set(func(*fakePrinter) { gone.back = true })
	waitUntil(t, "ready again", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return states[len(states)-1].Ready && len(p.list()) == 2
	})
}

// gonePrinter is a printer whose port disappears once the first receipt's
// bytes have left the line: every call then fails, until back.
type gonePrinter struct {
	*fakePrinter
	written, back bool
}

var errPortGone = errors.New("opening printer port /dev/ttyUSB0: no such file or directory")

func (p *gonePrinter) Write(ctx context.Context, b []byte) error {
	p.mu.Lock()
	if p.written && !p.back {
		p.mu.Unlock()
		return errPortGone
	}
	p.written = true
	p.mu.Unlock()
	return p.fakePrinter.Write(ctx, b)
}

func (p *gonePrinter) State(ctx context.Context) (printer.Status, error) {
	p.mu.Lock()
	gone := p.written && !p.back
	p.mu.Unlock()
	if gone {
		return printer.Status{}, errPortGone
	}
	return p.fakePrinter.State(ctx)
}

// A silent printer (one-way cable) never prints with status checks on, and
// prints blind with them off.
func TestSilentPrinter(t *testing.T) {
	q := newQueue(t, 3)
	p := &fakePrinter{silent: true}
	var mu sync.Mutex
	var states []State
	w := startWorker(t, q, p, true)
	time.Sleep(100 * time.Millisecond)
	if n := len(p.list()); n != 0 {
		t.Fatalf("%d printed without a status answer, want 0", n)
	}
	w.Stop()
	w2 := &Worker{Queue: q, Printer: p, Poll: 20 * time.Millisecond, Render: func(r offline.Receipt) ([]byte, error) { return r.Body, nil },
		OnState: func(s State) { mu.Lock(); states = append(states, s); mu.Unlock() }}
	w2.Start(context.Background())
	defer w2.Stop()
	waitUntil(t, "printed blind", func() bool { return len(p.list()) == 3 })
	mu.Lock()
	defer mu.Unlock()
	if len(states) == 0 || !states[len(states)-1].Ready {
		t.Errorf("states %+v, want ready after printing blind", states)
	}
}

// A port that fails puts the receipt back; it prints when the port works.
func TestWriteErrorRequeues(t *testing.T) {
	q := newQueue(t, 1)
	p := &fakePrinter{failNext: errors.New("opening printer port /dev/ttyUSB0: no such file")}
	startWorker(t, q, p, true)
	waitUntil(t, "printed after the port came back", func() bool {
		r, _ := q.GetReceipt(context.Background(), 1)
		return r.State == offline.ReceiptPrinted
	})
	r, _ := q.GetReceipt(context.Background(), 1)
	if r.Attempts != 2 || r.State != offline.ReceiptPrinted {
		t.Errorf("receipt %+v, want printed on the second attempt", r)
	}
}

// A receipt that cannot be rendered stays queued and is not marked sending.
func TestRenderErrorKeepsQueued(t *testing.T) {
	q := newQueue(t, 1)
	p := &fakePrinter{}
	w := &Worker{Queue: q, Printer: p, StatusChecks: true, Poll: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Render: func(offline.Receipt) ([]byte, error) { return nil, errors.New("no font") }}
	w.Start(context.Background())
	time.Sleep(80 * time.Millisecond)
	w.Stop()
	r, _ := q.GetReceipt(context.Background(), 1)
	if r.State != offline.ReceiptQueued || r.Attempts != 0 || len(p.list()) != 0 {
		t.Errorf("receipt %+v, printed %d; want still queued, never sent", r, len(p.list()))
	}
}

// A printer that says it stopped only some time after it took a receipt:
// the first status answer after the receipt still says ready. With Settle
// set the worker waits that long after this answer and asks again, and the
// second answer decides: the torn receipt is sent again once the paper is
// back, not counted printed on the first answer.
func TestSettleAsksAgainAfterTheAnswer(t *testing.T) {
	q := newQueue(t, 1)
	p := &fakePrinter{}
	late := &lateStopPrinter{fakePrinter: p}
	w := &Worker{Queue: q, Printer: late, StatusChecks: true, Poll: 10 * time.Millisecond,
		MaxBackoff: 20 * time.Millisecond, Settle: 5 * time.Millisecond,
		Render: func(r offline.Receipt) ([]byte, error) { return r.Body, nil }}
	w.Start(context.Background())
	defer w.Stop()
	var r offline.Receipt
	waitUntil(t, "the first attempt settled", func() bool {
		r, _ = q.GetReceipt(context.Background(), 1)
		return r.Attempts >= 1 && r.State != offline.ReceiptSending
	})
	if r.State != offline.ReceiptQueued || r.LastError == "" {
		t.Fatalf("after a stop reported %v after the receipt: %+v, want queued again with the reason", w.Settle, r)
	}
	p.set(func(p *fakePrinter) { p.status = printer.Status{} })
	waitUntil(t, "printed", func() bool {
		r, _ = q.GetReceipt(context.Background(), 1)
		return r.State == offline.ReceiptPrinted
	})
	if r.Attempts != 2 {
		t.Errorf("receipt %+v, want printed on the second attempt", r)
	}
}

// lateStopPrinter answers the first status query after its first receipt
// with the state it had when the receipt arrived (ready), and stops at
// paper end just after: the roll ran out while the receipt was printing.
type lateStopPrinter struct {
	*fakePrinter
	written, stopped bool
}

func (p *lateStopPrinter) Write(ctx context.Context, b []byte) error {
	p.mu.Lock()
	p.written = true
	p.mu.Unlock()
	return p.fakePrinter.Write(ctx, b)
}

func (p *lateStopPrinter) State(ctx context.Context) (printer.Status, error) {
	st, err := p.fakePrinter.State(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.written && !p.stopped {
		p.stopped = true
		p.status = printer.Status{PaperOut: true, Offline: true, PaperEndStop: true}
	}
	return st, err
}

// callLog is a printer that notes each call in order: W a receipt written,
// S the state asked.
type callLog struct {
	Printer
	mu    sync.Mutex
	calls []byte
}

func (p *callLog) Write(ctx context.Context, b []byte) error {
	p.note('W')
	return p.Printer.Write(ctx, b)
}

func (p *callLog) State(ctx context.Context) (printer.Status, error) {
	p.note('S')
	return p.Printer.State(ctx)
}

func (p *callLog) note(c byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, c)
}

func (p *callLog) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return string(p.calls)
}

// Receipts that follow one another at once: the ready answer after each
// stands for the check before the next, which is not asked again
// milliseconds later. The first is checked before it is sent, each after.
func TestReadyAfterReceiptStandsForTheNext(t *testing.T) {
	q := newQueue(t, 3)
	p := &fakePrinter{}
	log := &callLog{Printer: p}
	startWorker(t, q, log, true)
	waitUntil(t, "all 3 printed", func() bool { n, _ := q.ReceiptsWaiting(context.Background()); return n == 0 && len(p.list()) == 3 })
	time.Sleep(50 * time.Millisecond) // idle polls ask nothing
	if got, want := log.String(), "SWSWSWS"; got != want {
		t.Errorf("calls %q, want %q (S state, W receipt)", got, want)
	}
}

// A receipt queued after the queue ran empty is checked before it is sent:
// the answer after the last receipt does not stand across an idle wait.
func TestIdleGapChecksAgain(t *testing.T) {
	q := newQueue(t, 1)
	p := &fakePrinter{}
	log := &callLog{Printer: p}
	w := startWorker(t, q, log, true)
	waitUntil(t, "the first printed", func() bool { return len(p.list()) == 1 })
	time.Sleep(50 * time.Millisecond) // the worker finds the queue empty
	if _, err := q.QueueReceipt(context.Background(), offline.NewReceipt{Kind: "test", Body: []byte("second")}); err != nil {
		t.Fatal(err)
	}
	w.Kick()
	waitUntil(t, "the second printed", func() bool { n, _ := q.ReceiptsWaiting(context.Background()); return n == 0 && len(p.list()) == 2 })
	time.Sleep(20 * time.Millisecond)
	if got, want := log.String(), "SWSSWS"; got != want {
		t.Errorf("calls %q, want %q (S state, W receipt)", got, want)
	}
}

// The roll ends just after a receipt: the answer after it says paper out,
// so the receipt counts printed (it is whole) and the next one is not sent
// until the paper is back.
func TestPaperOutAfterReceiptBlocksTheNext(t *testing.T) {
	q := newQueue(t, 2)
	p := &fakePrinter{outAfter: 1}
	log := &callLog{Printer: p}
	startWorker(t, q, log, true)
	waitUntil(t, "the first printed", func() bool {
		r, _ := q.GetReceipt(context.Background(), 1)
		return r.State == offline.ReceiptPrinted
	})
	time.Sleep(100 * time.Millisecond) // checks that find no paper
	if calls := log.String(); strings.Count(calls, "W") != 1 {
		t.Fatalf("calls %q: the second receipt was sent to a printer out of paper", calls)
	}
	if r, _ := q.GetReceipt(context.Background(), 2); r.State != offline.ReceiptQueued || r.Attempts != 0 {
		t.Fatalf("second receipt %+v, want queued, never sent", r)
	}
	p.set(func(p *fakePrinter) { p.status = printer.Status{}; p.outAfter = 0 })
	waitUntil(t, "the second printed", func() bool { return len(p.list()) == 2 })
}
