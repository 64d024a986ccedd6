package reader

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ebfe/scard"

	"github.com/cardd/cardd/internal/backoff"
)

// pnpNotification is the PC/SC pseudo-reader whose state changes when a
// reader is plugged in or out.
const pnpNotification = `\\?PnP?\Notification`

// EventKind says what happened to a reader.
type EventKind int

const (
	// ReaderAdded: pcscd reports a new reader.
	ReaderAdded EventKind = iota + 1
	// ReaderRemoved: a reader vanished, or pcscd went away.
	ReaderRemoved
	// CardInserted: a card is in the field; ATR holds its answer to reset.
	CardInserted
	// CardRemoved: the card left the field.
	CardRemoved
	// ServiceLost: the connection to pcscd failed; the monitor is reconnecting.
	ServiceLost
	// ServiceBack: the monitor has a working pcscd connection again.
	ServiceBack
)

// String is the kind's name for logs and messages, such as "card-inserted".
func (k EventKind) String() string {
	switch k {
	case ReaderAdded:
		return "reader-added"
	case ReaderRemoved:
		return "reader-removed"
	case CardInserted:
		return "card-inserted"
	case CardRemoved:
		return "card-removed"
	case ServiceLost:
		return "service-lost"
	case ServiceBack:
		return "service-back"
	}
	return "unknown"
}

// Event is one change seen by the Monitor.
type Event struct {
	Kind   EventKind
	Reader string
	ATR    []byte    // CardInserted only
	Time   time.Time // when the monitor saw it: the start of a tap's clock
}

// Monitor watches every reader pcscd knows, with SCardGetStatusChange on the
// readers and on the PnP pseudo-reader, and reports readers and cards coming
// and going. The zero value is ready to use.
type Monitor struct {
	// Logger receives service loss and recovery; nil means slog.Default().
	Logger *slog.Logger
	// Poll bounds one SCardGetStatusChange wait; the reader list is read again
	// after each, so a reader added where PnP notification is unsupported is
	// seen within Poll. Zero means 2 s.
	Poll time.Duration
	// MaxBackoff caps the wait between attempts to reach pcscd. Zero means 5 s.
	MaxBackoff time.Duration
}

// readerState is what the monitor remembers of one reader between waits.
type readerState struct {
	current scard.StateFlag
	present bool
}

// Run watches until ctx is done, sending events to out. It never returns for
// a PC/SC failure: it logs it, reports ServiceLost, and reconnects with a
// capped, jittered backoff. It returns ctx.Err() when ctx is done.
func (m *Monitor) Run(ctx context.Context, out chan<- Event) error {
	log := m.Logger
	if log == nil {
		log = slog.Default()
	}
	maxBackoff := m.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = 5 * time.Second
	}
	retry := backoff.Backoff{Base: 100 * time.Millisecond, Max: maxBackoff}
	lost := false // whether ServiceLost was reported and not yet healed
	var lastLog time.Time
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w := &watch{m: m, out: out, readers: map[string]*readerState{}, pnp: scard.StateUnaware}
		pctx, err := scard.EstablishContext()
		if err == nil {
			if lost {
				log.Info("pcscd connection re-established")
				w.emit(ctx, Event{Kind: ServiceBack})
				lost = false
			}
			retry.Reset()
			err = w.run(ctx, pctx)
			w.dropAll(ctx)
			_ = pctx.Release()
			if ctx.Err() != nil {
				return ctx.Err()
			}
		} else {
			err = wrap("establish context", "", err)
		}
		if !lost {
			w.emit(ctx, Event{Kind: ServiceLost})
			lost = true
		}
		sleep := retry.Next()
		// Rate-limit: pcscd down for an hour must not write 36 000 lines.
		if time.Since(lastLog) > time.Minute {
			log.Warn(serviceDown, "err", err, "backoff", retry.Step())
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(sleep):
		}
	}
}

// watch is one connected period of a Monitor.
type watch struct {
	m       *Monitor
	out     chan<- Event
	readers map[string]*readerState
	pnp     scard.StateFlag
	pnpOK   bool
}

func (w *watch) emit(ctx context.Context, e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	select {
	case w.out <- e:
	case <-ctx.Done():
	}
}

// run returns nil never: only a service error, or ctx being done.
func (w *watch) run(ctx context.Context, pctx *scard.Context) error {
	poll := w.m.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	// SCardCancel is the one call pcsc-lite allows from another thread while
	// SCardGetStatusChange blocks: it is how shutdown interrupts the wait.
	stop := context.AfterFunc(ctx, func() { _ = pctx.Cancel() })
	defer stop()
	w.pnpOK = true
	for {
		// The cancel above reaches only a GetStatusChange in progress: one
		// that lands during sync or between two waits is lost, and the next
		// wait just times out. Without this check the loop would go on for
		// ever after its context ended (CI saw `cardd scan --wait 20s` hang
		// for half an hour).
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.sync(ctx, pctx); err != nil {
			return err
		}
		states := make([]scard.ReaderState, 0, len(w.readers)+1)
		for name, r := range w.readers {
			states = append(states, scard.ReaderState{Reader: name, CurrentState: r.current})
		}
		if w.pnpOK {
			states = append(states, scard.ReaderState{Reader: pnpNotification, CurrentState: w.pnp})
		}
		err := pctx.GetStatusChange(states, poll)
		switch {
		case err == nil:
		case errors.Is(err, scard.ErrTimeout):
			continue
		case errors.Is(err, scard.ErrCancelled), ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, scard.ErrUnknownReader) && w.pnpOK && len(w.readers) == 0:
			// A pcsc-lite without PnP support: fall back to polling the list.
			w.pnpOK = false
			continue
		case errors.Is(err, scard.ErrUnknownReader), errors.Is(err, scard.ErrReaderUnavailable):
			continue // a reader left between list and wait; list again
		default:
			if werr := wrap("get status change", "", err); isServiceError(werr) {
				return werr
			}
			// Anything else is unexpected but not fatal; avoid a hot loop.
			w.m.logger().Warn("SCardGetStatusChange failed", "err", err)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(poll):
			}
			continue
		}
		for _, s := range states {
			if s.Reader == pnpNotification {
				w.pnp = s.EventState &^ scard.StateChanged
				continue
			}
			w.update(ctx, s)
		}
	}
}

func (m *Monitor) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.Default()
}

// sync reads the reader list and reports readers added and removed.
func (w *watch) sync(ctx context.Context, pctx *scard.Context) error {
	names, err := pctx.ListReaders()
	if err != nil && !errors.Is(err, scard.ErrNoReadersAvailable) {
		if werr := wrap("list readers", "", err); isServiceError(werr) {
			return werr
		}
		return nil // transient; the next round lists again
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		seen[n] = true
		if _, ok := w.readers[n]; !ok {
			w.readers[n] = &readerState{current: scard.StateUnaware}
			w.emit(ctx, Event{Kind: ReaderAdded, Reader: n})
		}
	}
	for n := range w.readers {
		if !seen[n] {
			w.remove(ctx, n)
		}
	}
	return nil
}

func (w *watch) remove(ctx context.Context, name string) {
	if r := w.readers[name]; r != nil && r.present {
		w.emit(ctx, Event{Kind: CardRemoved, Reader: name})
	}
	delete(w.readers, name)
	w.emit(ctx, Event{Kind: ReaderRemoved, Reader: name})
}

// dropAll reports every reader gone when the connection to pcscd ends.
func (w *watch) dropAll(ctx context.Context) {
	for n := range w.readers {
		w.remove(ctx, n)
	}
}

// update turns one reader's new state into card events.
//
// pcsc-lite counts card events (each insertion and each removal) in the
// upper 16 bits of the event state, so a card swapped between two waits
// shows as present both times with the count up by two: removed and
// inserted. Up by one while present is not a swap: pcscd sets the present
// flag and bumps the count in two steps, and a wait woken by another reader
// can see the first step alone (seen here as 0x01060022 then 0x01070022 for
// one insertion). Taking that for a swap read the card a second time while
// it was being pulled.
func (w *watch) update(ctx context.Context, s scard.ReaderState) {
	r := w.readers[s.Reader]
	if r == nil || s.EventState&scard.StateChanged == 0 {
		return
	}
	if s.EventState&(scard.StateUnavailable|scard.StateUnknown) != 0 {
		w.remove(ctx, s.Reader)
		return
	}
	present := s.EventState&scard.StatePresent != 0
	events := uint16(s.EventState>>16) - uint16(r.current>>16)
	swapped := r.present && present && r.current != scard.StateUnaware && events >= 2
	r.current = s.EventState &^ scard.StateChanged
	switch {
	case swapped:
		w.emit(ctx, Event{Kind: CardRemoved, Reader: s.Reader})
		w.emit(ctx, Event{Kind: CardInserted, Reader: s.Reader, ATR: clone(s.Atr)})
	case present && !r.present:
		w.emit(ctx, Event{Kind: CardInserted, Reader: s.Reader, ATR: clone(s.Atr)})
	case !present && r.present:
		w.emit(ctx, Event{Kind: CardRemoved, Reader: s.Reader})
	}
	r.present = present
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
