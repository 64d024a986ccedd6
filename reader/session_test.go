package reader

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ebfe/scard"
)

// fakeConn is a card that answers 90 00 until it is made mute: then
// Transmit blocks until unmute, as SCardTransmit does inside pcscd for a
// vpcd card that stopped answering. Any other call made while a Transmit is
// blocked is recorded: on pcsc-lite it would freeze the whole process.
type fakeConn struct {
	mu        sync.Mutex
	mute      chan struct{} // non-nil: Transmit waits for it to close
	inFlight  bool
	collided  []string
	disposals []scard.Disposition
	calls     []string // begin and end, in order
	beginErr  error    // BeginTransaction answers it, once
}

func (c *fakeConn) enter(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inFlight {
		c.collided = append(c.collided, op)
	}
}

func (c *fakeConn) BeginTransaction() error {
	c.enter("begin")
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, "begin")
	err := c.beginErr
	c.beginErr = nil
	return err
}

func (c *fakeConn) EndTransaction(scard.Disposition) error {
	c.enter("end")
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, "end")
	return nil
}

func (c *fakeConn) Disconnect(d scard.Disposition) error {
	c.enter("disconnect")
	c.mu.Lock()
	defer c.mu.Unlock()
	c.disposals = append(c.disposals, d)
	return nil
}

func (c *fakeConn) Transmit([]byte) ([]byte, error) {
	c.enter("transmit")
	c.mu.Lock()
	mute := c.mute
	c.inFlight = mute != nil
	c.mu.Unlock()
	if mute != nil {
		<-mute
		c.mu.Lock()
		c.inFlight = false
		c.mu.Unlock()
		return nil, nil // vpcd: the card left, zero bytes
	}
	return []byte{0x90, 0x00}, nil
}

func (c *fakeConn) state() (collided []string, disposals []scard.Disposition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.collided...), append([]scard.Disposition(nil), c.disposals...)
}

// fakePCSC hands out contexts whose cards are given per reader.
type fakePCSC struct {
	mu          sync.Mutex
	cards       map[string]*fakeConn
	established int
	released    int
	connectErrs []error // the next connects fail with these, in turn (nil: that one succeeds)
}

func (p *fakePCSC) establish() (pcscContext, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.established++
	return &fakeContext{p: p}, nil
}

func (p *fakePCSC) counts() (established, released int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.established, p.released
}

type fakeContext struct{ p *fakePCSC }

func (c *fakeContext) connect(reader string) (conn, error) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if len(c.p.connectErrs) > 0 {
		err := c.p.connectErrs[0]
		c.p.connectErrs = c.p.connectErrs[1:]
		if err != nil {
			return nil, err
		}
	}
	return c.p.cards[reader], nil
}

func (c *fakeContext) Release() error {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	c.p.released++
	return nil
}

func newFakeDialer() (*Dialer, *fakePCSC) {
	p := &fakePCSC{cards: map[string]*fakeConn{"A": {}, "B": {}}}
	return &Dialer{establish: p.establish, Logger: discard()}, p
}

// eventually polls cond; the bound only stops a broken test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSilentCardAbandoned: a Transmit the card never answers returns at the
// session's deadline, the reader is busy (no new session, nothing sent to
// pcscd on that context) while the other reader works, and when the call
// comes back the card is reset, its context released and the reader freed.
func TestSilentCardAbandoned(t *testing.T) {
	d, p := newFakeDialer()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	s, err := d.Open(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Transmit([]byte{0x00, 0xA4, 0x04, 0x00}); err != nil {
		t.Fatalf("first APDU: %v", err)
	}
	card := p.cards["A"]
	mute := make(chan struct{})
	card.mu.Lock()
	card.mute = mute
	card.mu.Unlock()

	_, err = s.Transmit([]byte{0x80, 0x5C, 0x00, 0x02, 0x04})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Transmit to a silent card = %v, want one wrapping context.DeadlineExceeded", err)
	}
	if !d.isBusy("A") {
		t.Error("reader A not busy while its abandoned call is blocked")
	}
	if _, err := s.Transmit([]byte{0x00, 0xB0, 0x95, 0x00, 0x00}); !errors.Is(err, ErrReaderBusy) {
		t.Errorf("Transmit on the abandoned session = %v, want ErrReaderBusy", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close of an abandoned session = %v, want nil", err)
	}
	if _, err := d.Open(context.Background(), "A"); !errors.Is(err, ErrReaderBusy) {
		t.Errorf("Open on the busy reader = %v, want ErrReaderBusy", err)
	}
	other, err := d.Open(context.Background(), "B")
	if err != nil {
		t.Fatalf("Open on the other reader while A is stuck: %v", err)
	}
	if _, err := other.Transmit([]byte{0x00, 0xA4, 0x04, 0x00}); err != nil {
		t.Errorf("the other reader's APDU while A is stuck: %v", err)
	}
	if err := other.Close(); err != nil {
		t.Error(err)
	}
	if collided, disposals := card.state(); len(collided) != 0 || len(disposals) != 0 {
		t.Fatalf("calls on the stuck card while its Transmit was blocked: %v, disconnects %v", collided, disposals)
	}

	close(mute) // the card leaves: pcscd returns the call
	eventually(t, "reader A freed", func() bool { return !d.isBusy("A") })
	if _, disposals := card.state(); len(disposals) != 1 || disposals[0] != scard.ResetCard {
		t.Errorf("after the abandoned call returned: disconnects %v, want one with reset", disposals)
	}
	again, err := d.Open(context.Background(), "A")
	if err != nil {
		t.Fatalf("Open on A after its call returned: %v", err)
	}
	again.Close()
	// A's first context was released by the goroutine (it went through an
	// abandoned call); B's is kept for its next tap.
	if est, rel := p.counts(); est != 3 || rel != 1 {
		t.Errorf("contexts established %d, released %d; want 3 and 1", est, rel)
	}
}

// TestStopAbandons: the daemon stopping (the session's context cancelled)
// ends a blocked exchange as well, with context.Canceled.
func TestStopAbandons(t *testing.T) {
	d, p := newFakeDialer()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := d.Open(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	mute := make(chan struct{})
	defer close(mute)
	p.cards["A"].mute = mute
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := s.Transmit([]byte{0x80, 0x5C, 0x00, 0x02, 0x04}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Transmit when stopped = %v, want context.Canceled", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("Dialer.Close with an abandoned call: %v", err)
	}
}

// TestContextPerReaderKept: a reader's context serves its next session; one
// that failed with a service error is released and a new one established.
func TestContextPerReaderKept(t *testing.T) {
	d, p := newFakeDialer()
	for range 3 {
		s, err := d.Open(context.Background(), "A")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Transmit([]byte{0x00, 0xA4, 0x04, 0x00}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if est, _ := p.counts(); est != 1 {
		t.Errorf("3 sessions on one reader established %d contexts, want 1", est)
	}
	p.connectErrs = []error{scard.ErrInvalidHandle} // pcscd restarted: the kept context is dead
	s, err := d.Open(context.Background(), "A")
	if err != nil {
		t.Fatalf("Open after pcscd restarted: %v (it should retry on a new context)", err)
	}
	s.Close()
	if est, rel := p.counts(); est != 2 || rel != 1 {
		t.Errorf("after a stale context: established %d, released %d; want 2 and 1", est, rel)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// isBusy reports whether reader has an abandoned card call that has not
// returned yet (Open refuses such a reader).
func (d *Dialer) isBusy(reader string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.busy[reader]
}

// TestPauseResume: a paused session keeps its connection (no disconnect,
// no new context) and a Resume begins a new transaction on it; a card
// reset by another application since the Pause (SCARD_W_RESET_CARD) makes
// Resume fail as a card gone, and Close after a Pause disconnects without
// ending a transaction that is not there.
func TestPauseResume(t *testing.T) {
	d, p := newFakeDialer()
	s, err := d.Open(context.Background(), "A")
	if err != nil {
		t.Fatal(err)
	}
	card := p.cards["A"]
	if err := s.Pause(); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if err := s.Resume(context.Background()); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if _, err := s.Transmit([]byte{0x00, 0xA4, 0x00, 0x00}); err != nil {
		t.Fatalf("Transmit after Resume: %v", err)
	}
	if err := s.Pause(); err != nil {
		t.Fatalf("second Pause: %v", err)
	}
	card.mu.Lock()
	card.beginErr = scard.ErrResetCard
	card.mu.Unlock()
	if err := s.Resume(context.Background()); !errors.Is(err, ErrCardRemoved) {
		t.Fatalf("Resume after a reset = %v, want ErrCardRemoved", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	card.mu.Lock()
	calls := append([]string(nil), card.calls...)
	card.mu.Unlock()
	want := []string{"begin", "end", "begin", "end", "begin"}
	if len(calls) != len(want) {
		t.Fatalf("transaction calls %v, want %v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Fatalf("transaction calls %v, want %v", calls, want)
		}
	}
	if _, disposals := card.state(); len(disposals) != 1 || disposals[0] != scard.LeaveCard {
		t.Errorf("disconnects %v, want one, leaving the card", disposals)
	}
	if est, _ := p.counts(); est != 1 {
		t.Errorf("contexts established %d, want 1: the paused session kept its own", est)
	}
}

// TestConnectRetriesACardSeemingGone: a card whose first power-ups fail
// (pcsc-lite says removed, or mute, while the reader holds it) is connected
// on a later try; one that fails every try is ErrCardRemoved after
// connectRetries more, and a context that ends stops the retries at once.
func TestConnectRetriesACardSeemingGone(t *testing.T) {
	d, p := newFakeDialer()
	p.mu.Lock()
	p.connectErrs = []error{scard.ErrRemovedCard, scard.ErrUnresponsiveCard}
	p.mu.Unlock()
	s, err := d.Open(context.Background(), "A")
	if err != nil {
		t.Fatalf("Open after two failed power-ups: %v (it should try again)", err)
	}
	s.Close()
	if est, _ := p.counts(); est != 1 {
		t.Errorf("card retries established %d contexts, want 1 (the context is not stale)", est)
	}

	p.mu.Lock()
	p.connectErrs = []error{scard.ErrRemovedCard, scard.ErrRemovedCard, scard.ErrNoSmartcard, nil}
	p.mu.Unlock()
	if _, err := d.Open(context.Background(), "A"); !errors.Is(err, ErrCardRemoved) {
		t.Fatalf("Open of a card gone on every try = %v, want ErrCardRemoved", err)
	}
	p.mu.Lock()
	left := len(p.connectErrs)
	p.connectErrs = nil
	p.mu.Unlock()
	if left != 1 {
		t.Errorf("%d connects left unmade, want 1: a card gone is tried 1+%d times", left, connectRetries)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.mu.Lock()
	p.connectErrs = []error{scard.ErrRemovedCard}
	p.mu.Unlock()
	if _, err := d.Open(ctx, "A"); err == nil {
		t.Fatal("Open with its context ended succeeded")
	}
}
