package tap

import (
	"context"
	"errors"
	"log/slog"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/psam"
	"github.com/cardd/cardd/reader"
)

// pausable is a SAM session that can be kept from one tap to the next
// (*reader.Session): Pause ends its PC/SC transaction and keeps the
// connection, Resume begins the next one, and fails when the PSAM was
// reset or removed in between.
type pausable interface {
	SAMSession
	Pause() error
	Resume(ctx context.Context) error
}

// samLink is the runner's connection to the PSAM, kept between purchases
// so that the PSAM's set-up (psam.OpenProfile: its application selected,
// its terminal id and key index read) is done once per PSAM session, not
// once per tap (docs/psam.md). A connection held between taps keeps the
// PSAM powered and in its application: pcscd powers down only a card no
// client is connected to. The set-up is forgotten with the connection:
// when the PSAM or its reader goes away or comes (the monitor's events,
// forget), when pcscd goes away, when the PSAM was reset or removed since
// the last tap (Resume fails), and when a PSAM command of a tap failed
// without an answer. Only the runner's goroutine touches it.
type samLink struct {
	reader string
	s      SAMSession // nil: no connection held
	// setup is what psam.OpenProfile learnt on this connection, per PSAM
	// profile (its String).
	setup map[string]psam.Info
	// selected is the application the last set-up left selected: a
	// profile set up for another one is set up again (setupFor), or its
	// INIT SAM FOR PURCHASE would run under the other application's keys.
	selected string
	log      *slog.Logger
}

// open returns the PSAM session for one tap: the held connection resumed,
// or a new one (open) when there is none, it is of another reader, or it
// does not resume.
func (l *samLink) open(ctx context.Context, open openFunc, name string) (SAMSession, error) {
	if p, ok := l.s.(pausable); ok && l.reader == name {
		err := p.Resume(ctx)
		if err == nil {
			return &samTap{l: l}, nil
		}
		l.logger().Info("the PSAM connection did not resume; connecting anew, the PSAM's set-up redone", "reader", name, "err", err)
	}
	l.forget()
	s, err := open(ctx, name)
	if err != nil {
		return nil, err
	}
	l.s, l.reader = s, name
	return &samTap{l: l}, nil
}

// forget closes the held connection, if any, and drops the set-up learnt
// on it.
func (l *samLink) forget() {
	if l.s != nil {
		if err := l.s.Close(); err != nil {
			l.logger().Warn("closing the PSAM connection", "reader", l.reader, "err", err)
		}
	}
	l.s, l.setup, l.selected = nil, nil, ""
}

// event forgets the connection on a change of the PSAM's reader or of
// pcscd: whatever the PSAM held may be gone.
func (l *samLink) event(ev reader.Event, role reader.Role) {
	switch {
	case ev.Kind == reader.ServiceLost:
	case role != reader.RoleSAM:
		return
	case ev.Kind == reader.CardInserted, ev.Kind == reader.CardRemoved, ev.Kind == reader.ReaderRemoved:
	default:
		return
	}
	l.forget()
}

func (l *samLink) logger() *slog.Logger {
	if l.log != nil {
		return l.log
	}
	return slog.Default()
}

// samTap is the PSAM for one tap, on the link's connection. Its Close
// pauses the connection for the next tap, or closes it (forgetting the
// set-up) when it cannot be kept: a command failed without an answer from
// the PSAM, or the session cannot pause.
type samTap struct {
	l      *samLink
	broken bool
	closed bool
}

func (t *samTap) Transmit(cmd []byte) ([]byte, error) {
	if t.closed || t.l.s == nil {
		return nil, errors.New("PSAM session closed")
	}
	resp, err := t.l.s.Transmit(cmd)
	if err != nil {
		// No answer (the PSAM reset or gone, the reader, pcscd, the tap's
		// time): the connection may have lost what the PSAM held.
		t.broken = true
	}
	return resp, err
}

// Close ends the tap's use of the PSAM.
func (t *samTap) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	p, ok := t.l.s.(pausable)
	if !ok || t.broken {
		t.l.forget()
		return nil
	}
	if err := p.Pause(); err != nil {
		t.l.logger().Info("the PSAM connection could not be kept; the next purchase connects anew", "reader", t.l.reader, "err", err)
		t.l.forget()
	}
	return nil
}

// setupFor is the set-up learnt for profile key on this connection, if
// the PSAM is still in the application it selected: profiles of other
// card families may use other applications of the same PSAM.
func (t *samTap) setupFor(key string) (psam.Info, bool) {
	info, ok := t.l.setup[key]
	if !ok || info.App.String() != t.l.selected {
		return psam.Info{}, false
	}
	return info, true
}

// remember keeps profile key's set-up for the next taps on this
// connection; the PSAM is now in its application.
func (t *samTap) remember(key string, info psam.Info) {
	if t.l.setup == nil {
		t.l.setup = map[string]psam.Info{}
	}
	t.l.setup[key], t.l.selected = info, info.App.String()
}

// drop forgets every profile's set-up: the PSAM answered as one that left
// its application.
func (t *samTap) drop() { t.l.setup, t.l.selected = nil, "" }

// setupCache is a PSAM session that remembers the PSAM's set-up between
// taps (samTap); a session that is not one is set up on every purchase.
type setupCache interface {
	setupFor(key string) (psam.Info, bool)
	remember(key string, info psam.Info)
	drop()
}

var _ apdu.Transmitter = (*samTap)(nil)
