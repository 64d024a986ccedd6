package reader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ebfe/scard"
)

// A card call into pcscd can block for as long as the card stays in the
// field: a card (or reader driver) that stops answering mid-exchange holds
// SCardTransmit inside pcscd, and vpcd, like many drivers, waits for the
// answer without a timeout. Nothing interrupts it: pcsc-lite's SCardCancel
// reaches only SCardGetStatusChange, and any other call on the same
// SCARDCONTEXT waits for the blocked one while holding the client library's
// process-wide lock, which freezes every PC/SC call of the process, the
// monitor's included. So a Session runs each card call on a goroutine of its
// own and gives up waiting when its context ends; the call is then abandoned:
// nothing touches its PC/SC context again until it returns, the reader is
// busy (Open refuses it) meanwhile, and the goroutine resets the card,
// releases the context and frees the reader when the call comes back.

// closeWait bounds the end of a session that was not abandoned: ending the
// transaction and disconnecting do not talk to the card, so they are quick
// unless pcscd itself is stuck on that reader.
const closeWait = time.Second

// conn is the part of *scard.Card a Session uses.
type conn interface {
	BeginTransaction() error
	EndTransaction(scard.Disposition) error
	Transmit([]byte) ([]byte, error)
	Disconnect(scard.Disposition) error
}

// pcscContext is the part of *scard.Context a Dialer uses.
type pcscContext interface {
	connect(reader string) (conn, error)
	Release() error
}

// scardContext adapts *scard.Context to pcscContext.
type scardContext struct{ *scard.Context }

func (c scardContext) connect(reader string) (conn, error) {
	card, err := c.Connect(reader, scard.ShareShared, scard.ProtocolAny)
	if err != nil {
		return nil, err
	}
	return card, nil
}

func establish() (pcscContext, error) {
	ctx, err := scard.EstablishContext()
	if err != nil {
		return nil, err
	}
	return scardContext{ctx}, nil
}

// Dialer opens card sessions. Each reader gets a PC/SC context of its own,
// kept between its sessions and established again after pcscd went away:
// pcsc-lite serializes the calls on one context, so readers sharing one would
// wait for each other, and a reader whose call was abandoned would freeze the
// rest. The zero value is ready to use; it is safe for concurrent use.
type Dialer struct {
	// Logger receives context loss, abandoned calls and their return; nil
	// means slog.Default().
	Logger *slog.Logger

	// establish makes a new PC/SC context; nil means pcscd's. Tests set it.
	establish func() (pcscContext, error)

	mu   sync.Mutex
	idle map[string]pcscContext // by reader: a context no session uses now
	busy map[string]bool        // readers with an abandoned call in pcscd
}

func (d *Dialer) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.Default()
}

// take returns a context for a new session on reader: the one its last
// session left, or a new one. A busy reader gets none.
func (d *Dialer) take(reader string) (pcscContext, error) {
	d.mu.Lock()
	if d.busy[reader] {
		d.mu.Unlock()
		return nil, &Error{Op: "connect", Reader: reader, Kind: ErrReaderBusy,
			Err: errors.New("an abandoned card call on this reader has not returned")}
	}
	if c := d.idle[reader]; c != nil {
		delete(d.idle, reader)
		d.mu.Unlock()
		return c, nil
	}
	d.mu.Unlock()
	est := d.establish
	if est == nil {
		est = establish
	}
	c, err := est()
	if err != nil {
		return nil, wrap("establish context", "", err)
	}
	return c, nil
}

// put keeps c for the reader's next session, or releases it when it may be
// stale (stale: a call on it failed with a service error) or another is kept.
func (d *Dialer) put(reader string, c pcscContext, stale bool) {
	d.mu.Lock()
	if !stale && d.idle[reader] == nil {
		if d.idle == nil {
			d.idle = map[string]pcscContext{}
		}
		d.idle[reader] = c
		c = nil
	}
	d.mu.Unlock()
	if c != nil {
		if stale {
			d.logger().Warn("pcscd connection lost; will reconnect on next use", "reader", reader)
		}
		_ = c.Release()
	}
}

func (d *Dialer) setBusy(reader string, busy bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.busy == nil {
		d.busy = map[string]bool{}
	}
	if busy {
		d.busy[reader] = true
	} else {
		delete(d.busy, reader)
	}
}

// connectRetries and connectPause bound Open's retries of a card that
// seems gone at connect. A contactless card entering the field, or a reader
// driver slow to power it (vpcd on a loaded machine), can fail its first
// power-up: pcsc-lite then reports it removed, reset or mute while the
// reader still holds it, and the tap would end "card removed too early" with
// the card lying there. Nothing has reached the card before the transaction
// begins, so trying again cannot apply anything twice; a card really gone
// fails each try at once and costs at most the pauses (150 ms).
const (
	connectRetries = 2
	connectPause   = 50 * time.Millisecond
)

// Open connects to the card in reader and begins a PC/SC transaction, so that
// no other application interleaves commands with ours until Close. The
// session is bound to ctx: a call that has not returned when ctx ends is
// abandoned (see Session.Transmit), and so is a connect. If the reader's
// context turns out to be stale (pcscd restarted since it was made), Open
// establishes a new one and tries once more; a card that seems gone at
// connect is tried connectRetries more times, connectPause apart and longer
// each time, within ctx.
func (d *Dialer) Open(ctx context.Context, reader string) (*Session, error) {
	serviceRetried, cardRetries := false, 0
	for {
		pctx, err := d.take(reader)
		if err != nil {
			return nil, err
		}
		s := &Session{d: d, pctx: pctx, ctx: ctx, reader: reader}
		err = s.call("connect", func() error {
			card, err := pctx.connect(reader)
			if err != nil {
				return wrap("connect", reader, err)
			}
			if err := card.BeginTransaction(); err != nil {
				_ = card.Disconnect(scard.LeaveCard)
				return wrap("begin transaction", reader, err)
			}
			s.card = card
			return nil
		})
		// No SCardStatus for the ATR: the monitor's event already carries
		// it, and every call to pcscd is time added to the tap.
		if err == nil {
			return s, nil
		}
		if s.abandoned {
			return nil, err
		}
		stale := isServiceError(err)
		d.put(reader, pctx, stale)
		switch {
		case stale && !serviceRetried:
			serviceRetried = true
		case errors.Is(err, ErrCardRemoved) && cardRetries < connectRetries:
			cardRetries++
			t := time.NewTimer(time.Duration(cardRetries) * connectPause)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, err
			}
			d.logger().Debug("card seemed gone at connect; trying again", "reader", reader, "attempt", cardRetries+1, "err", err)
		default:
			return nil, err
		}
	}
}

// Close releases the PC/SC contexts kept for sessions to come. Open sessions
// must be closed first; a context with an abandoned call is left to its
// goroutine, which releases it when the call returns.
func (d *Dialer) Close() error {
	d.mu.Lock()
	idle := d.idle
	d.idle = nil
	d.mu.Unlock()
	var errs []error
	for _, c := range idle {
		errs = append(errs, wrap("release context", "", c.Release()))
	}
	return errors.Join(errs...)
}

// Session is one card connection inside a PC/SC transaction. It is an
// apdu.Transmitter. It is not safe for concurrent use: a card answers one
// command at a time.
type Session struct {
	d      *Dialer
	pctx   pcscContext
	ctx    context.Context // bounds every call
	card   conn
	reader string
	closed bool
	// abandoned: a call did not return before ctx ended; the goroutine
	// waiting for it owns card and pctx from then on.
	abandoned bool
	stale     bool // a call failed with a service error
	paused    bool // no transaction: Pause ended it, Resume not yet
}

// Reader returns the name of the reader the card is in.
func (s *Session) Reader() string { return s.reader }

// call runs fn, a PC/SC call, on a goroutine and waits for it or for the
// session's context to end, whichever comes first. When the context ends
// first the call is abandoned: the error wraps ctx.Err() (errors.Is finds
// context.DeadlineExceeded or context.Canceled), the reader is busy, and the
// session is dead; when the call returns at last, the card is reset (no
// half-done exchange continues with the next session), the context is
// released and the reader freed.
func (s *Session) call(op string, fn func() error) error {
	if s.abandoned {
		return &Error{Op: op, Reader: s.reader, Kind: ErrReaderBusy, Err: errors.New("session abandoned")}
	}
	if err := s.ctx.Err(); err != nil {
		// Past the deadline already: do not start what may never return.
		return &Error{Op: op, Reader: s.reader, Err: err}
	}
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		if isServiceError(err) {
			s.stale = true
		}
		return err
	case <-s.ctx.Done():
	}
	s.abandoned = true
	s.d.setBusy(s.reader, true)
	start := time.Now()
	s.d.logger().Warn("card call abandoned: no answer in time; the reader is busy until pcscd returns it",
		"reader", s.reader, "op", op, "err", s.ctx.Err())
	go func() {
		err := <-done
		if s.card != nil {
			_ = s.card.Disconnect(scard.ResetCard)
		}
		_ = s.pctx.Release()
		s.d.setBusy(s.reader, false)
		s.d.logger().Info("abandoned card call returned; reader free again", "reader", s.reader, "op", op,
			"after_ms", time.Since(start).Milliseconds(), "err", err)
	}()
	return &Error{Op: op, Reader: s.reader, Err: s.ctx.Err()}
}

// Transmit sends one command APDU and returns the raw response APDU. It waits
// no longer than the session's context: past it the exchange is abandoned,
// and whatever the card did with the command is unknown until it is read
// again (DESIGN.md, money rule 3); a late answer is thrown away.
func (s *Session) Transmit(cmd []byte) ([]byte, error) {
	if s.closed {
		return nil, &Error{Op: "transmit", Reader: s.reader, Err: errors.New("session closed")}
	}
	var resp []byte
	err := s.call("transmit", func() error {
		var err error
		resp, err = s.card.Transmit(cmd)
		return wrap("transmit", s.reader, err)
	})
	if err != nil {
		return nil, err
	}
	if len(resp) < 2 {
		// No status word means the card is gone, not that it misspoke: the
		// vpcd driver, and some contactless readers, report a card leaving
		// mid-exchange as a successful transfer of zero bytes.
		return nil, &Error{Op: "transmit", Reader: s.reader, Kind: ErrCardRemoved,
			Err: fmt.Errorf("response of %d bytes has no status word", len(resp))}
	}
	return resp, nil
}

// Pause ends the session's transaction and keeps the connection, so a
// later Resume needs no connect, and the card stays powered with what its
// commands left (a PSAM's selected application): pcscd powers down only a
// card no client is connected to. Another application may use the card
// meanwhile; if it resets or removes the card, Resume says so. Pause has
// its own bound, as Close. After an error the session is unusable: Close it.
func (s *Session) Pause() error {
	if s.closed || s.abandoned {
		return &Error{Op: "pause", Reader: s.reader, Err: errors.New("session closed")}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), closeWait)
	defer cancel()
	s.ctx = ctx
	err := s.call("pause", func() error {
		return wrap("pause", s.reader, s.card.EndTransaction(scard.LeaveCard))
	})
	s.paused = err == nil
	return err
}

// Resume begins a new transaction on a paused session, bound to ctx as
// Open binds a new one. A card reset or removed since Pause (pcsc-lite's
// SCARD_W_RESET_CARD, SCARD_W_REMOVED_CARD) is an error of kind
// ErrCardRemoved: whatever the card held from before is gone; Close the
// session and Open a new one.
func (s *Session) Resume(ctx context.Context) error {
	if s.closed || s.abandoned {
		return &Error{Op: "resume", Reader: s.reader, Err: errors.New("session closed")}
	}
	s.ctx = ctx
	err := s.call("resume", func() error {
		return wrap("resume", s.reader, s.card.BeginTransaction())
	})
	s.paused = s.paused && err != nil
	return err
}

// Close ends the transaction and disconnects, leaving the card powered so the
// next tap on the same card does not pay for a cold reset. Closing twice is a
// no-op, and so is closing an abandoned session (its goroutine cleans up).
// Errors from a card already gone are not reported: there is nothing left to
// release.
func (s *Session) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.abandoned {
		return nil
	}
	// Close runs after the tap's deadline too, so it has its own bound.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), closeWait)
	defer cancel()
	s.ctx = ctx
	var errEnd, errDisc error
	err := s.call("close", func() error {
		if !s.paused {
			errEnd = wrap("close", s.reader, s.card.EndTransaction(scard.LeaveCard))
		}
		errDisc = wrap("close", s.reader, s.card.Disconnect(scard.LeaveCard))
		if isServiceError(errEnd) || isServiceError(errDisc) {
			return errors.Join(errEnd, errDisc)
		}
		return nil
	})
	if s.abandoned {
		return err
	}
	s.d.put(s.reader, s.pctx, s.stale)
	for _, err := range []error{errEnd, errDisc} {
		if err != nil && !errors.Is(err, ErrCardRemoved) && !errors.Is(err, ErrReaderGone) {
			return err
		}
	}
	return nil
}
