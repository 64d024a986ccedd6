package door

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"go.bug.st/serial"
)

// ErrRelayClosed is returned by Open and Lock after Close.
var ErrRelayClosed = errors.New("door relay: closed")

// closeRetry is how soon a close that could not be written is tried again.
// The door stands unlocked meanwhile, so it is short; a var for tests.
var closeRetry = time.Second

// Relay switches a relay board on a serial port: on (lock released) for the
// hold time after each Open, then off. Safe for concurrent use.
//
// The close that ends a hold is written by a timer the Relay owns, not by
// the caller, so a caller that gives up (its context ends, its tap handler
// returns) never leaves the door unlocked. An Open during the hold starts
// the hold again: one close at the end of the last hold, never one in the
// middle of the next person's passage. A close that cannot be written (the
// port is away) is retried every second until it is written, Open is
// called, or the Relay is closed.
//
// The port is opened when first needed, and again after a write failed
// (a USB cable pulled and put back, the board replugged under the same
// symlink), so the board is used again without a restart. Writes are a few
// bytes and go.bug.st/serial cannot cancel them, so the contexts of Open
// and Lock only stop a call that has not begun.
type Relay struct {
	set relaySettings
	log *slog.Logger

	mu      sync.Mutex
	port    serial.Port // nil when not open
	open    bool        // on: the open bytes were written and no close since
	timer   *time.Timer // the pending close
	gen     uint64      // advanced by every Open, Lock and Close: a timer of an older one does nothing
	failing bool        // the last close failed: log the next failure at Debug, success at Info
	closed  bool
}

// NewRelay validates c, applies the defaults and returns its relay, or the
// bad keys as Validate reports them. The port is not opened until the
// first Open or Lock. log gets the port opening and failing, at Info
// and Warn, and each switch at Debug; nil discards.
func NewRelay(c RelayConfig, log *slog.Logger) (*Relay, error) {
	s, err := c.resolve()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Relay{set: s, log: log.With("port", s.port)}, nil
}

// Open switches the relay on now and schedules the switch off after the
// hold time, or pushes a pending switch off back to the hold time from now
// when the door is already open. The open bytes are written again in that
// case too: the board may have been replugged, and the caller learns
// whether the door is really open. It returns an error when the port cannot
// be opened or written; a hold already running still ends with its close.
func (r *Relay) Open(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrRelayClosed
	}
	if err := r.write(r.set.open, "open"); err != nil {
		return err
	}
	extended := r.open
	r.open = true
	r.failing = false
	r.schedule(r.set.hold)
	if extended {
		r.log.Debug("door relay hold extended", "hold", r.set.hold)
	} else {
		r.log.Debug("door relay on", "hold", r.set.hold)
	}
	return nil
}

// Lock switches the relay off now, ending any hold. The daemon calls it at
// start, since a daemon killed during a hold left the relay on. On error
// (the port is away) the close is retried in the background as after a
// hold, and IsOpen reports true until it is written.
func (r *Relay) Lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrRelayClosed
	}
	r.stopTimer()
	if err := r.write(r.set.close, "close"); err != nil {
		r.open = true // as far as we know: make sure the retry runs
		r.failing = true
		r.schedule(closeRetry)
		return err
	}
	r.open = false
	r.failing = false
	r.log.Debug("door relay off (lock)")
	return nil
}

// IsOpen reports whether the door may be unlocked: the relay was switched
// on and its close has not been written yet.
func (r *Relay) IsOpen() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.open
}

// Close ends the relay: a pending close is written now, so a daemon that
// stops never leaves the door unlocked, and the port is closed. The error
// says when the close could not be written (the door may then stand
// unlocked until the board loses power or cardd runs again). Close may be
// called more than once; Open and Lock fail after it.
func (r *Relay) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	r.stopTimer()
	var err error
	if r.open {
		if err = r.write(r.set.close, "close"); err != nil {
			err = fmt.Errorf("door relay: the door may stand unlocked: %w", err)
			r.log.Error("door relay: could not lock the door on close", "err", err)
		} else {
			r.open = false
			r.log.Debug("door relay off (closing)")
		}
	}
	r.closePort()
	return err
}

// schedule arms the close after d, replacing any pending one. The mutex is
// held.
func (r *Relay) schedule(d time.Duration) {
	r.stopTimer()
	gen := r.gen
	r.timer = time.AfterFunc(d, func() { r.expire(gen) })
}

// stopTimer cancels the pending close. A timer that already fired and waits
// for the mutex sees the generation moved on and does nothing. The mutex is
// held.
func (r *Relay) stopTimer() {
	r.gen++
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}

// expire writes the close that ends the hold of generation gen, or tries
// again soon when it cannot.
func (r *Relay) expire(gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if gen != r.gen || r.closed || !r.open {
		return
	}
	if err := r.write(r.set.close, "close"); err != nil {
		if r.failing {
			r.log.Debug("door relay: close still failing; retrying", "err", err)
		} else {
			r.log.Warn("door relay: could not lock the door; retrying every second", "err", err, "retry", closeRetry)
			r.failing = true
		}
		r.timer = time.AfterFunc(closeRetry, func() { r.expire(gen) })
		return
	}
	r.open = false
	r.timer = nil
	if r.failing {
		r.log.Info("door relay: door locked after the port came back")
		r.failing = false
	} else {
		r.log.Debug("door relay off")
	}
}

// write sends b on the port, opening it first if needed. When the open port
// fails (it vanished) it is closed, opened again at the same path and b
// sent once more: the path may now lead to the board replugged. The mutex
// is held.
func (r *Relay) write(b []byte, what string) error {
	if r.port != nil {
		err := send(r.port, b)
		if err == nil {
			return nil
		}
		r.log.Warn("door relay port failed; reopening", "err", err)
		r.closePort()
	}
	mode := serial.Mode{BaudRate: r.set.baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit}
	p, err := serial.Open(r.set.port, &mode)
	if err != nil {
		return fmt.Errorf("opening door relay port %s (door.relay.port): %w", r.set.port, err)
	}
	r.port = p
	r.log.Info("door relay port open", "baud", r.set.baud)
	if err := send(p, b); err != nil {
		r.closePort()
		return fmt.Errorf("writing the %s command to door relay port %s: %w", what, r.set.port, err)
	}
	return nil
}

// send writes b and waits until it has left the line (tcdrain), so the
// relay has switched, give or take the board's own delay, when Open
// returns.
func send(p serial.Port, b []byte) error {
	n, err := p.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return err
	}
	return p.Drain()
}

func (r *Relay) closePort() {
	if r.port != nil {
		r.port.Close()
		r.port = nil
	}
}
