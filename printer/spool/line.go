// Package spool drains the print queue of the offline store to a serial
// ESC/POS printer: the serial line (go.bug.st/serial) with its real-time
// status queries, and the worker that sends each receipt once.
package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"go.bug.st/serial"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/printer"
)

// ErrNoAnswer is returned by Line.Status when the printer did not answer a
// status query in time: a one-way cable, a printer that does not implement
// DLE EOT, or one that is off. The worker does not then print blind: a
// printer that is off would swallow receipts counted as printed. Receipts
// wait, and the error says how to print without status checks.
var ErrNoAnswer = errors.New("printer did not answer the status query (off, unplugged, or on a one-way cable: then set printer.status_checks to false)")

// Flow control bytes a printer sends when its buffer is nearly full (XOFF)
// and when it can take more (XON). A DLE EOT answer never equals either: its
// bit 1 is always 1 and its bit 0 always 0.
const (
	xon  = 0x11
	xoff = 0x13
)

// chunk is how much is written at a time, so an XOFF stops the line within
// a few milliseconds even at 9600 baud (64 bytes = 67 ms there).
const chunk = 64

// Line is the serial line to one printer. It opens the port when first used
// and again after the port failed (a USB-serial cable pulled, the simulator
// stopped), so a printer that comes back is used again without a restart.
// Methods may be called from one goroutine at a time.
type Line struct {
	// Port is the device path, e.g. /dev/ttyUSB0.
	Port string
	// Mode is the line setting: baud, data bits, parity, stop bits.
	Mode serial.Mode
	// XonXoff honours the printer's XOFF/XON flow control.
	XonXoff bool
	// StatusTimeout bounds Status; 0 means 500ms.
	StatusTimeout time.Duration
	// Logger gets the port opening and failing; nil discards.
	Logger *slog.Logger

	port    serial.Port
	answers chan byte     // status bytes from the reader
	readErr chan error    // the reader's end
	mu      sync.Mutex    // guards paused
	paused  bool          // XOFF seen, XON not yet
	resume  chan struct{} // signalled on XON
}

func (l *Line) logger() *slog.Logger {
	if l.Logger != nil {
		return l.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// open opens the port if it is not open, and starts its reader.
func (l *Line) open() error {
	if l.port != nil {
		select {
		case err := <-l.readErr:
			// The reader ended: the port is gone. Close and open again.
			l.logger().Warn("printer port failed; reopening", "port", l.Port, "err", err)
			l.closePort()
		default:
			return nil
		}
	}
	mode := l.Mode
	p, err := serial.Open(l.Port, &mode)
	if err != nil {
		return fmt.Errorf("opening printer port %s (printer.port): %w", l.Port, err)
	}
	l.port = p
	l.answers = make(chan byte, 16)
	l.readErr = make(chan error, 1)
	l.resume = make(chan struct{}, 1)
	l.mu.Lock()
	l.paused = false
	l.mu.Unlock()
	go l.read(p, l.answers, l.resume, l.readErr)
	l.logger().Info("printer port open", "port", l.Port, "baud", mode.BaudRate)
	return nil
}

// read takes everything the printer sends: flow control and status answers.
func (l *Line) read(p serial.Port, answers chan<- byte, resume chan<- struct{}, done chan<- error) {
	buf := make([]byte, 64)
	for {
		n, err := p.Read(buf)
		if err == nil && n == 0 {
			// go.bug.st/serial returns 0, nil only on a read timeout, and
			// none is set: rather than spin, take the line for gone.
			err = io.EOF
		}
		if err != nil {
			done <- err
			return
		}
		for _, b := range buf[:n] {
			switch {
			case l.XonXoff && b == xoff:
				l.mu.Lock()
				l.paused = true
				l.mu.Unlock()
			case l.XonXoff && b == xon:
				l.mu.Lock()
				l.paused = false
				l.mu.Unlock()
				select {
				case resume <- struct{}{}:
				default:
				}
			default:
				select {
				case answers <- b:
				default: // nobody asked; a stale answer is dropped
				}
			}
		}
	}
}

func (l *Line) closePort() {
	if l.port != nil {
		l.port.Close()
		l.port = nil
	}
}

// fail closes the port after a write or status error, so the next call
// opens it again, and returns err.
func (l *Line) fail(err error) error {
	l.closePort()
	return err
}

// Write sends p to the printer and waits until the bytes have left the
// serial line (tcdrain), pausing while the printer has sent XOFF. A failed
// port is closed; the next call opens it again.
func (l *Line) Write(ctx context.Context, p []byte) error {
	if err := l.open(); err != nil {
		return err
	}
	for len(p) > 0 {
		if err := l.waitXON(ctx); err != nil {
			return err
		}
		n := min(chunk, len(p))
		if _, err := l.port.Write(p[:n]); err != nil {
			return l.fail(fmt.Errorf("writing to printer port %s: %w", l.Port, err))
		}
		p = p[n:]
	}
	if err := l.port.Drain(); err != nil {
		return l.fail(fmt.Errorf("draining printer port %s: %w", l.Port, err))
	}
	return nil
}

// waitXON returns when the printer is not holding the line with XOFF.
func (l *Line) waitXON(ctx context.Context) error {
	for {
		l.mu.Lock()
		paused := l.paused
		l.mu.Unlock()
		if !paused {
			return nil
		}
		select {
		case <-l.resume:
		case err := <-l.readErr:
			return l.fail(fmt.Errorf("printer port %s failed while paused by XOFF: %w", l.Port, err))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Status sends DLE EOT n (10 04 n, ESC/POS real-time status transmission)
// and returns the printer's one-byte answer, or ErrNoAnswer after the status
// timeout. A printer answers it at once, even with receipts still in its
// buffer, so it never waits behind printing.
func (l *Line) Status(ctx context.Context, n byte) (byte, error) {
	b, err := l.ask(ctx, n)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

// ask sends DLE EOT n for each n in one write and returns the answers in
// the same order, or ErrNoAnswer when they are not all in within the status
// timeout. A printer reads real-time commands in order and answers each as
// it reads it, so several queries cost one round trip, not one each: over
// a USB-serial adapter that holds what the printer sends for up to its
// latency timer (16 ms by default for FTDI), that is most of the time.
func (l *Line) ask(ctx context.Context, ns ...byte) ([]byte, error) {
	if err := l.open(); err != nil {
		return nil, err
	}
	for { // an answer that came too late for the previous query is stale
		select {
		case <-l.answers:
			continue
		default:
		}
		break
	}
	q := make([]byte, 0, 3*len(ns))
	for _, n := range ns {
		q = append(q, 0x10, 0x04, n)
	}
	if _, err := l.port.Write(q); err != nil {
		return nil, l.fail(fmt.Errorf("asking printer status on %s: %w", l.Port, err))
	}
	timeout := l.StatusTimeout
	if timeout <= 0 {
		timeout = 500 * time.Millisecond
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	got := make([]byte, 0, len(ns))
	for len(got) < len(ns) {
		select {
		case b := <-l.answers:
			got = append(got, b)
		case err := <-l.readErr:
			return nil, l.fail(fmt.Errorf("printer port %s failed: %w", l.Port, err))
		case <-t.C:
			return nil, ErrNoAnswer
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return got, nil
}

// State asks the printer's status (DLE EOT 1, 2 and 4 in one write, then 3
// when 2 reports an error) and merges the answers. An answer that is not a
// status byte is an error; no answer is ErrNoAnswer.
func (l *Line) State(ctx context.Context) (printer.Status, error) {
	var st printer.Status
	if err := l.merge(ctx, &st, printer.StatusPrinter, printer.StatusOffline, printer.StatusPaper); err != nil {
		return st, err
	}
	if st.Error { // its cause, asked only then
		if err := l.merge(ctx, &st, printer.StatusError); err != nil {
			return st, err
		}
	}
	return st, nil
}

// merge asks the printer for the statuses kinds in one round trip and
// updates st with the answers.
func (l *Line) merge(ctx context.Context, st *printer.Status, kinds ...printer.StatusKind) error {
	ns := make([]byte, len(kinds))
	for i, k := range kinds {
		ns[i] = byte(k)
	}
	answers, err := l.ask(ctx, ns...)
	if err != nil {
		return err
	}
	for i, k := range kinds {
		if err := st.Update(k, answers[i]); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the port if it is open.
func (l *Line) Close() error {
	l.closePort()
	return nil
}

// ConfiguredLine is the serial line of a validated printer configuration.
func ConfiguredLine(p config.PrinterConfig, log *slog.Logger) *Line {
	mode := serial.Mode{BaudRate: p.Baud, DataBits: p.DataBits, StopBits: serial.OneStopBit}
	if p.StopBits == "2" {
		mode.StopBits = serial.TwoStopBits
	}
	mode.Parity = map[string]serial.Parity{"none": serial.NoParity, "odd": serial.OddParity, "even": serial.EvenParity,
		"mark": serial.MarkParity, "space": serial.SpaceParity}[p.Parity] // validated by config
	return &Line{Port: p.Port, Mode: mode, XonXoff: p.FlowControl == "xonxoff", StatusTimeout: p.StatusTimeout, Logger: log}
}

// LockPath is the lock file beside the store at storePath that the process
// driving the printer holds (the daemon, or an operator command when no
// daemon runs), so two never write receipts into each other.
func LockPath(storePath string) string { return storePath + ".printer.lock" }
