package reader

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ebfe/scard"
)

// Dialer opens card sessions on one PC/SC context, establishing it on first
// use and again after pcscd went away. The zero value is ready to use; it is
// safe for concurrent use.
type Dialer struct {
	// Logger receives context loss and recovery; nil means slog.Default().
	Logger *slog.Logger

	mu  sync.Mutex
	ctx *scard.Context
}

func (d *Dialer) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.Default()
}

func (d *Dialer) context() (*scard.Context, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx != nil {
		return d.ctx, nil
	}
	ctx, err := scard.EstablishContext()
	if err != nil {
		return nil, wrap("establish context", "", err)
	}
	d.ctx = ctx
	return ctx, nil
}

// drop forgets ctx after a service error, so the next Open establishes anew.
func (d *Dialer) drop(ctx *scard.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx == ctx {
		d.logger().Warn("pcscd connection lost; will reconnect on next use")
		_ = ctx.Release()
		d.ctx = nil
	}
}

// Open connects to the card in reader and begins a PC/SC transaction, so that
// no other application interleaves commands with ours until Close. If the
// context turns out to be stale (pcscd restarted since it was made), Open
// establishes a new one and tries once more.
func (d *Dialer) Open(reader string) (*Session, error) {
	for attempt := 0; ; attempt++ {
		ctx, err := d.context()
		if err != nil {
			return nil, err
		}
		s, err := open(ctx, reader)
		if err == nil {
			return s, nil
		}
		if isServiceError(err) {
			d.drop(ctx)
			if attempt == 0 {
				continue
			}
		}
		return nil, err
	}
}

// Close releases the PC/SC context. Open sessions must be closed first.
func (d *Dialer) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx == nil {
		return nil
	}
	err := d.ctx.Release()
	d.ctx = nil
	return wrap("release context", "", err)
}

func open(ctx *scard.Context, reader string) (*Session, error) {
	card, err := ctx.Connect(reader, scard.ShareShared, scard.ProtocolAny)
	if err != nil {
		return nil, wrap("connect", reader, err)
	}
	if err := card.BeginTransaction(); err != nil {
		_ = card.Disconnect(scard.LeaveCard)
		return nil, wrap("begin transaction", reader, err)
	}
	// No SCardStatus for the ATR: the monitor's event already carries it, and
	// every call to pcscd is time added to the tap.
	return &Session{card: card, reader: reader}, nil
}

// Session is one card connection inside a PC/SC transaction. It is an
// apdu.Transmitter. It is not safe for concurrent use: a card answers one
// command at a time.
type Session struct {
	card   *scard.Card
	reader string
	closed bool
}

// Reader returns the name of the reader the card is in.
func (s *Session) Reader() string { return s.reader }

// Transmit sends one command APDU and returns the raw response APDU.
func (s *Session) Transmit(cmd []byte) ([]byte, error) {
	if s.closed {
		return nil, &Error{Op: "transmit", Reader: s.reader, Err: errors.New("session closed")}
	}
	resp, err := s.card.Transmit(cmd)
	if err == nil && len(resp) < 2 {
		// No status word means the card is gone, not that it misspoke: the
		// vpcd driver, and some contactless readers, report a card leaving
		// mid-exchange as a successful transfer of zero bytes.
		return nil, &Error{Op: "transmit", Reader: s.reader, Kind: ErrCardRemoved,
			Err: fmt.Errorf("response of %d bytes has no status word", len(resp))}
	}
	return resp, wrap("transmit", s.reader, err)
}

// Close ends the transaction and disconnects, leaving the card powered so the
// next tap on the same card does not pay for a cold reset. Closing twice is a
// no-op. Errors from a card already gone are not reported: there is nothing
// left to release.
func (s *Session) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	errEnd := s.card.EndTransaction(scard.LeaveCard)
	errDisc := s.card.Disconnect(scard.LeaveCard)
	for _, err := range []error{errEnd, errDisc} {
		if err := wrap("close", s.reader, err); err != nil && !errors.Is(err, ErrCardRemoved) && !errors.Is(err, ErrReaderGone) {
			return err
		}
	}
	return nil
}
