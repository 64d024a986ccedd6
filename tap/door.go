package tap

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/apdu/mifare"
	"github.com/cardd/cardd/door"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/redact"
)

// Errors that end a door tap with the door shut.
var (
	ErrAccessDenied = errors.New("access denied")
	ErrRelayFailed  = errors.New("the door relay did not open")
)

// DoorRelay opens the door; *door.Relay is one.
type DoorRelay interface {
	Open(ctx context.Context) error
}

// Door decides a tap at a dorm door, offline, from the access list in
// force and the deny list, opens the relay when the card is allowed and
// journals every decision (uploaded like any journal row). Cards with the
// e-purse are known by number, any other ISO 14443 card by its UID.
type Door struct {
	Store *offline.Store
	Relay DoorRelay
	// Families are the card profiles (epurse.Profile names) whose numbers
	// the door takes; nil takes every family. A door decides by number
	// alone, so a number is only as good as the family it comes from.
	Families []string
	Now      func() time.Time // nil: time.Now
	Logger   *slog.Logger     // nil: slog.Default()

	index atomic.Pointer[door.Index]
}

// DoorReport is what the door step of a tap did.
type DoorReport struct {
	Decision door.Decision
	// Opened is whether the relay took the open command.
	Opened bool
	// ToOpen is from the card's arrival to the relay's open command
	// written (when Opened).
	ToOpen    time.Duration
	JournalID string
}

// SetList puts an access list in force; nil means none (every card is
// refused as unknown).
func (d *Door) SetList(ix *door.Index) { d.index.Store(ix) }

// List is the access list in force, nil when none.
func (d *Door) List() *door.Index { return d.index.Load() }

func (d *Door) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Door) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.Default()
}

// uidFallback reports whether a failed purse read leaves the card worth
// identifying by its UID: the card answered, it just has no e-purse.
func uidFallback(err error) bool {
	return !errors.Is(err, reader.ErrCardRemoved) && !errors.Is(err, ErrTapTimeout) &&
		!errors.Is(err, reader.ErrNoService) && !errors.Is(err, reader.ErrReaderGone) &&
		!errors.Is(err, reader.ErrReaderBusy) && !errors.Is(err, context.Canceled)
}

// Decide runs after the purse read (cr nil and readErr set when it
// failed). It returns the report and nil when the door opened, the report
// and an error wrapping ErrAccessDenied when it did not, or readErr when
// the card could not be identified at all.
func (d *Door) Decide(ctx context.Context, t apdu.Transmitter, start time.Time, cr *CardRead, readErr error) (DoorReport, error) {
	var rep DoorReport
	var id door.Identity
	switch {
	case cr != nil:
		id.Number = cr.Info.CardNumber
	case uidFallback(readErr):
		uid, err := mifare.UID(t)
		if err != nil {
			return rep, fmt.Errorf("%w; and no UID: %v", readErr, err)
		}
		id.UID = strings.ToUpper(hex.EncodeToString(uid))
	default:
		return rep, readErr
	}
	now := d.now()
	var denyErr error
	deny := func(card string) (bool, string) {
		denied, reason, err := d.Store.Denied(ctx, card)
		if err != nil {
			// A deny list that cannot be read keeps the door shut: a lost
			// card must never get in because of a disk error.
			denyErr = err
			return true, "deny list unreadable"
		}
		return denied, reason
	}
	dec := door.Decide(d.index.Load(), deny, id, now)
	if cr != nil && dec.Allowed && d.Families != nil && !slices.Contains(d.Families, cr.Profile.Name) {
		// Families number their cards independently: another city's card
		// may carry the 16 digits of one of ours.
		dec = door.Decision{Reason: door.ReasonUnknownCard, Card: dec.Card,
			Text: fmt.Sprintf("a %s card; this door takes %s cards", cr.Profile.Name, strings.Join(d.Families, ", "))}
	}
	if cr != nil && dec.Allowed {
		if err := cr.Transactable(); err != nil {
			// A serial in hex, or unread validity dates, must not open a
			// door: an unknown issuer's serial may spell a listed number,
			// and an unread expiry date would never expire.
			dec = door.Decision{Reason: door.ReasonUnknownCard, Card: dec.Card, Text: err.Error()}
		}
	}
	if denyErr != nil {
		d.logger().Error("reading the deny list; door kept shut", "err", denyErr)
	}
	if dec.Allowed && cr != nil && cr.Info.ExpiryDate.Before(epurse.DateOf(now)) {
		dec = door.Decision{Reason: door.ReasonExpired, Card: dec.Card, Text: "the card expired on " + cr.Info.ExpiryDate.String()}
	}
	rep.Decision = dec
	var relayErr error
	if dec.Allowed {
		if relayErr = d.Relay.Open(ctx); relayErr != nil {
			d.logger().Error("door relay did not open", "card", redact.CardNumber(dec.Card), "err", relayErr)
			dec.Text += "; the relay failed: " + relayErr.Error()
		} else {
			rep.Opened, rep.ToOpen = true, time.Since(start)
		}
	}
	detail := fmt.Sprintf("%s: %s", dec.Reason, dec.Text)
	if dec.Group != "" {
		detail += " (group " + dec.Group + ")"
	}
	card := dec.Card
	if card == "" {
		card = hostapi.UIDCardPrefix + id.UID
	} else if id.Number == "" {
		card = hostapi.UIDCardPrefix + card
	}
	// Done either way: the decision was made and carried out; the detail
	// starts with its reason for the host to sort by.
	row, err := d.Store.Begin(ctx, offline.Row{Kind: offline.KindAccess, State: offline.StateDone, Card: card, Detail: detail})
	if err != nil {
		// The door has already decided; losing its record is logged, not
		// turned into a refusal.
		d.logger().Error("journal of a door decision", "err", err)
	} else {
		rep.JournalID = row.ID
	}
	switch {
	case relayErr != nil:
		return rep, fmt.Errorf("%w: %v", ErrRelayFailed, relayErr)
	case !rep.Opened:
		return rep, fmt.Errorf("%w: %s", ErrAccessDenied, dec.Reason)
	}
	return rep, nil
}
