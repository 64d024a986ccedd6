// Package vpcd is the card side of the vsmartcard vpcd socket protocol, so a
// simulated card plugs into the real pcscd through its virtual reader driver
// (Debian package vsmartcard-vpcd).
//
// The driver listens on TCP; the card connects to it as a client. Connecting
// is inserting the card, closing the connection is removing it. Every message
// both ways is a frame: a 2-byte big-endian length and a payload. One-byte
// payloads from vpcd are control codes (power off, power on, reset, get ATR);
// only get ATR is answered. Longer payloads are command APDUs, answered with
// the response APDU (data and status word). See docs/epurse.md.
package vpcd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"time"
)

// Card is what a simulated card offers the virtual reader. Its methods are
// called from the goroutine running Insert, one at a time.
type Card interface {
	// ATR returns the card's answer to reset (1 to 33 bytes on a real card).
	ATR() []byte
	// Transmit processes one command APDU and returns the response APDU:
	// response data followed by the 2-byte status word.
	Transmit(cmd []byte) ([]byte, error)
	// Reset is called on power off, power on and warm reset: the card
	// forgets its volatile state (selected file, session, challenge).
	Reset()
}

// BasePort is the TCP port of the first virtual reader slot ("Virtual PCD
// 00 00"); each further slot listens on the next port.
const BasePort = 35963

// SlotAddr returns the loopback address of vpcd slot n: "127.0.0.1:35963"
// for slot 0, "127.0.0.1:35964" for slot 1, and so on.
func SlotAddr(slot int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(BasePort+slot))
}

// Options tunes how the card behaves in the reader. The zero value is a
// fast card that is never pulled and does not log.
type Options struct {
	// Latency is waited before each APDU answer, to look like a real card:
	// about 15ms is a real contactless card at 106 kbit/s. 0 answers at once.
	Latency time.Duration

	// TearAfter, when positive, pulls the card during its answer to the Nth
	// command APDU of this insertion: the card processes that command (its
	// state may change, as a real card's does) but the connection is closed
	// before the answer is sent, and Insert returns ErrTorn. 0 never tears.
	TearAfter int

	// SilentAfter, when positive, makes the card go mute during its answer
	// to the Nth command APDU of this insertion: the card processes that
	// command, as with TearAfter, but then answers nothing more (not that
	// command, not the ATR requests of pcscd's presence polls) while it
	// stays connected, so pcscd still counts it in the field. This is a
	// card or reader driver that hangs mid-tap: vpcd waits for the answer
	// without a timeout, so the SCardTransmit blocks until the card leaves
	// (ctx done). 0 never goes silent.
	SilentAfter int

	// Logger receives insertion, removal and tearing at Info and each APDU
	// at Debug. APDUs are logged by INS, lengths and status word only, never
	// their data, which can hold a PIN or a key. nil discards.
	Logger *slog.Logger

	// OnAPDU, when set, is called after the card has processed each command
	// APDU with n, the number processed so far in this insertion (the torn
	// one included). It runs on the serving goroutine, so keep it quick.
	OnAPDU func(n int)
}

// ErrTorn is returned by Insert when the card was pulled at Options.TearAfter.
var ErrTorn = errors.New("vpcd: card pulled (tear-after)")

// ErrClosed is returned by Insert when vpcd closed the connection:
// pcscd stopped, or the driver gave up on the card.
var ErrClosed = errors.New("vpcd: vpcd closed the connection")

// Control codes: one-byte payloads from vpcd (vpcd.h in vsmartcard).
const (
	ctrlOff   = 0x00
	ctrlOn    = 0x01
	ctrlReset = 0x02
	ctrlATR   = 0x04
)

// dialTimeout bounds the connect to vpcd. It is on this machine, so a
// connect that takes longer means nothing useful is listening.
const dialTimeout = 2 * time.Second

// swFailure is answered when the card's Transmit fails or returns something
// that is not a response APDU: "no precise diagnosis", and the card stays in.
var swFailure = []byte{0x6F, 0x00}

// Insert connects card to the vpcd listening at addr, which inserts it into
// that virtual reader, and serves vpcd until one of:
//   - ctx is done: the connection is closed (the card is removed) and Insert
//     returns nil;
//   - the tear point of opt.TearAfter: Insert returns ErrTorn;
//   - the connection fails, or vpcd breaks the protocol: Insert returns that
//     error (ErrClosed when vpcd closed the connection).
//
// A vpcd slot holds one card. A second Insert into a busy slot still
// connects (the kernel queues it) but is not served until the first card
// leaves, and a third times out dialing: callers share a slot by a lock, not
// by trying.
//
// What pcscd does with this card: it asks for the ATR on every presence poll
// (a few times a second); it powers the card on to read it at insertion and
// whenever a client connects, and off again within about a second of going
// idle, so Reset is called often. When the card is torn, the torn
// SCardTransmit succeeds with an empty response (the driver reports no
// error), the next one fails with SCARD_E_NOT_TRANSACTED, and after pcscd's
// next poll with SCARD_W_REMOVED_CARD.
func Insert(ctx context.Context, addr string, card Card, opt Options) error {
	if card == nil {
		return errors.New("vpcd: nil card")
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("addr", addr)

	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil // asked to stop before the card got in
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("vpcd: nothing listens on %s; pcscd with the vpcd driver (vsmartcard-vpcd) is probably not running: %w", addr, err)
		}
		return fmt.Errorf("vpcd: connecting to %s: %w", addr, err)
	}
	defer conn.Close()
	// Closing the connection is the one way to interrupt a blocked read, and
	// it is also what removing the card means, so cancellation does just that.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	log.Info("card inserted")

	s := &server{conn: conn, card: card, opt: opt, log: log, ctx: ctx}
	err = s.serve()
	switch {
	case ctx.Err() != nil:
		log.Info("card removed", "apdus", s.n)
		return nil
	case errors.Is(err, ErrTorn):
		log.Info("card torn", "apdus", s.n)
		return ErrTorn
	default:
		log.Info("card removed", "apdus", s.n, "err", err)
		return err
	}
}

// server is one insertion: a connection to vpcd and the card in it.
type server struct {
	conn net.Conn
	card Card
	opt  Options
	log  *slog.Logger
	ctx  context.Context
	n    int // command APDUs processed
	// silent is set at opt.SilentAfter: from then on every message from
	// vpcd is read and dropped.
	silent bool
}

func (s *server) serve() error {
	for {
		quickAck(s.conn)
		msg, err := ReadFrame(s.conn)
		quickAck(s.conn)
		if err == io.EOF {
			return ErrClosed
		}
		if err != nil {
			return err
		}
		if s.silent {
			// Read on, so vpcd's writes never block on a full socket; a
			// mute card answers nothing, not even an ATR request.
			continue
		}
		if len(msg) == 1 {
			err = s.control(msg[0])
		} else {
			err = s.apdu(msg)
		}
		if err != nil {
			return err
		}
	}
}

// control handles a one-byte control message from vpcd.
func (s *server) control(c byte) error {
	switch c {
	case ctrlOff, ctrlOn, ctrlReset:
		// vpcd sends these and goes on without waiting: no answer.
		s.log.Debug("power control", "code", c)
		s.card.Reset()
		return nil
	case ctrlATR:
		// vpcd asks for the ATR on every presence poll (several times a
		// second), so it is not logged.
		atr := s.card.ATR()
		if len(atr) == 0 || len(atr) > MaxPayload {
			return fmt.Errorf("vpcd: card has an unusable %d-byte ATR", len(atr))
		}
		return WriteFrame(s.conn, atr)
	default:
		// A one-byte command APDU does not exist (the header alone is four),
		// and vpcd waits for no answer to a control code it invented later.
		s.log.Warn("unknown control code ignored", "code", c)
		return nil
	}
}

// apdu has the card process one command APDU and answers it, unless this is
// the tear point.
func (s *server) apdu(cmd []byte) error {
	resp, err := s.card.Transmit(cmd)
	switch {
	case errors.Is(err, ErrTorn):
		// The card itself chose to leave mid-command (a simulated torn
		// write): no answer, the card is gone, as with TearAfter.
		s.n++
		s.log.Info("card left while answering", "ins", hexByte(cmd[1]))
		s.conn.Close()
		return ErrTorn
	case err != nil:
		s.log.Warn("card failed a command; answering 6F00", "ins", hexByte(cmd[1]), "err", err)
		resp = swFailure
	case len(resp) < 2 || len(resp) > MaxPayload:
		// vpcd would take an empty answer for a dead card and eject it.
		s.log.Warn("card gave no valid response APDU; answering 6F00", "ins", hexByte(cmd[1]), "len", len(resp))
		resp = swFailure
	}
	s.n++
	if s.opt.OnAPDU != nil {
		s.opt.OnAPDU(s.n)
	}
	if s.opt.Latency > 0 {
		t := time.NewTimer(s.opt.Latency)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return s.ctx.Err()
		}
	}
	// Only the header's INS, the lengths and the status word: the data can
	// hold a PIN or a key.
	attrs := []any{"ins", hexByte(cmd[1]), "cmd_len", len(cmd), "resp_len", len(resp),
		"sw", fmt.Sprintf("%X", resp[len(resp)-2:])}
	if s.opt.TearAfter > 0 && s.n == s.opt.TearAfter {
		s.log.Debug("apdu processed, answer torn", attrs...)
		s.conn.Close()
		return ErrTorn
	}
	if s.opt.SilentAfter > 0 && s.n == s.opt.SilentAfter {
		s.log.Info("apdu processed, card gone silent", attrs...)
		s.silent = true
		return nil
	}
	s.log.Debug("apdu", attrs...)
	return WriteFrame(s.conn, resp)
}

// hexByte formats b as two hex digits for the log.
func hexByte(b byte) string { return fmt.Sprintf("%02X", b) }
