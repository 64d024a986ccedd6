// Package reader is cardd's thin layer over PC/SC (pcsc-lite through
// github.com/ebfe/scard): it lists and watches readers, reports cards arriving
// and leaving, opens card sessions that hold a PC/SC transaction around an
// exchange, and turns PC/SC failures into errors a tap handler can act on.
//
// It survives pcscd restarting and readers vanishing: pcsc-lite never heals a
// context whose daemon went away (its client keeps the dead socket and even
// SCardIsValidContext says yes), so every service error here releases the
// context and establishes a new one, with a capped backoff.
package reader

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/ebfe/scard"
)

// ErrCardRemoved means the card left the field, or stopped answering, before
// the exchange finished: "card removed too early, tap again". Whatever the
// last command was, its effect on the card is unknown until the card is read
// again (DESIGN.md, money rule 3).
var ErrCardRemoved = errors.New("card removed too early")

// ErrNoService means pcscd (on Windows, the Smart Card service) is not
// running or went away. The Dialer and the
// Monitor recover from it by themselves; it is returned so the current tap can
// report it.
var ErrNoService = errors.New(serviceName + " not available")

// ErrReaderGone means the reader was unplugged or is not known to pcscd.
var ErrReaderGone = errors.New("reader not available")

// ErrReaderBusy means a card call on this reader was abandoned (it did not
// return before its session's deadline) and pcscd has not returned it yet:
// no new session opens on the reader until it does. Other readers work.
var ErrReaderBusy = errors.New("reader busy: an abandoned card call has not returned")

// Error is a PC/SC failure with the operation it happened in. It unwraps to
// one of the sentinel errors above where one applies, and always to the
// underlying scard.Error, so errors.Is works with both.
type Error struct {
	Op     string // "connect", "transmit", ...
	Reader string
	Kind   error // ErrCardRemoved, ErrNoService, ErrReaderGone, ErrReaderBusy or nil
	Err    error // the scard.Error, or the context's error for an abandoned call
}

// Error names the reader, the operation and the failure.
func (e *Error) Error() string {
	if e.Kind != nil {
		return fmt.Sprintf("reader %q: %s: %v (%v)", e.Reader, e.Op, e.Kind, e.Err)
	}
	return fmt.Sprintf("reader %q: %s: %v", e.Reader, e.Op, e.Err)
}

// Unwrap returns both the kind and the PC/SC error.
func (e *Error) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// wrap classifies a PC/SC error. Card errors cover what pcsc-lite reports when
// a contactless card leaves mid-exchange: removed or reset, no card, mute, or
// a transmit the driver could not complete.
func wrap(op, reader string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op, Reader: reader, Err: err}
	var se scard.Error
	if errors.As(err, &se) {
		switch se {
		case scard.ErrRemovedCard, scard.ErrResetCard, scard.ErrNoSmartcard,
			scard.ErrUnpoweredCard, scard.ErrUnresponsiveCard, scard.ErrNotTransacted,
			scard.ErrUnsupportedCard:
			e.Kind = ErrCardRemoved
		case scard.ErrCommError:
			// On a card call the card stopped answering; on a context call
			// (no reader) the socket to pcscd broke.
			if reader != "" {
				e.Kind = ErrCardRemoved
			} else {
				e.Kind = ErrNoService
			}
		case scard.ErrNoService, scard.ErrServiceStopped, scard.ErrInvalidHandle:
			e.Kind = ErrNoService
		case scard.ErrUnknownReader, scard.ErrReaderUnavailable, scard.ErrNoReadersAvailable:
			e.Kind = ErrReaderGone
		}
	}
	return e
}

// isServiceError reports whether the context must be re-established. A comm
// error is included even on a card call: pcsc-lite reports pcscd dying as
// SCARD_F_COMM_ERROR, and a fresh context costs one round trip.
func isServiceError(err error) bool {
	return errors.Is(err, ErrNoService) || errors.Is(err, scard.ErrCommError)
}

// Role is what a reader is used for.
type Role int

const (
	// RoleNone is a reader cardd leaves alone.
	RoleNone Role = iota
	// RoleCard is a reader where people tap their cards.
	RoleCard
	// RoleSAM is the slot holding the terminal's PSAM.
	RoleSAM
)

// String is the role as logs name it: "card", "sam" or "none".
func (r Role) String() string {
	switch r {
	case RoleCard:
		return "card"
	case RoleSAM:
		return "sam"
	}
	return "none"
}

// Roles assigns roles to readers by name. A reader matching SAM is a SAM slot
// even if it matches Card too, so that a broad card pattern such as ".*" never
// sends a tap to the PSAM. A nil pattern matches nothing.
type Roles struct {
	Card *regexp.Regexp
	SAM  *regexp.Regexp
}

// Of returns the role of the reader with the given name.
func (r Roles) Of(name string) Role {
	switch {
	case r.SAM != nil && r.SAM.MatchString(name):
		return RoleSAM
	case r.Card != nil && r.Card.MatchString(name):
		return RoleCard
	}
	return RoleNone
}

// ListReaders returns the readers pcscd knows now. No reader is an empty list,
// not an error.
func ListReaders() ([]string, error) {
	ctx, err := scard.EstablishContext()
	if err != nil {
		return nil, wrap("establish context", "", err)
	}
	defer ctx.Release()
	names, err := ctx.ListReaders()
	if errors.Is(err, scard.ErrNoReadersAvailable) {
		return nil, nil
	}
	return names, wrap("list readers", "", err)
}
