// Package apdu encodes ISO/IEC 7816-4 command and response APDUs, turns status
// words into typed errors, handles the 61xx/6Cxx retrieval rules of T=0 cards and
// SAMs, and parses BER-TLV. It does no I/O of its own: Transceive drives any
// Transmitter, such as a PC/SC card session or an in-memory simulated card.
package apdu

import (
	"errors"
	"fmt"
)

// Command is a command APDU. Ne is the number of response bytes expected:
// 0 means no Le field, 256 is encoded as Le=00 in a short APDU, and values
// above 256 (or Data longer than 255 bytes) select the extended form.
type Command struct {
	CLA, INS, P1, P2 byte
	Data             []byte
	Ne               int
}

// Maximum lengths of ISO 7816-4 short and extended APDUs.
const (
	MaxShortNc    = 255
	MaxShortNe    = 256
	MaxExtendedNc = 65535
	MaxExtendedNe = 65536
)

// ErrMalformed is returned, wrapped, for bytes that are not a well-formed APDU.
var ErrMalformed = errors.New("apdu: malformed")

// Bytes encodes c in the short form when it fits and in the extended form when
// it does not (ISO 7816-4 §5.1).
func (c Command) Bytes() ([]byte, error) {
	nc, ne := len(c.Data), c.Ne
	if nc > MaxExtendedNc || ne < 0 || ne > MaxExtendedNe {
		return nil, fmt.Errorf("%w: Nc=%d Ne=%d out of range", ErrMalformed, nc, ne)
	}
	b := make([]byte, 0, 4+3+nc+3)
	b = append(b, c.CLA, c.INS, c.P1, c.P2)
	if nc <= MaxShortNc && ne <= MaxShortNe {
		if nc > 0 {
			b = append(b, byte(nc))
			b = append(b, c.Data...)
		}
		if ne > 0 {
			b = append(b, byte(ne)) // 256 wraps to 00, as the standard says
		}
		return b, nil
	}
	// Extended: a 00 marker, then 2-byte Lc and/or Le.
	b = append(b, 0)
	if nc > 0 {
		b = append(b, byte(nc>>8), byte(nc))
		b = append(b, c.Data...)
	}
	if ne > 0 {
		b = append(b, byte(ne>>8), byte(ne)) // 65536 wraps to 0000
	}
	return b, nil
}

// String renders the command as hex, for debugging and test failures.
// Never log a VERIFY command with it: the data field is the PIN.
func (c Command) String() string {
	b, err := c.Bytes()
	if err != nil {
		return fmt.Sprintf("invalid command %02X%02X%02X%02X: %v", c.CLA, c.INS, c.P1, c.P2, err)
	}
	return fmt.Sprintf("% X", b)
}

// ParseCommand decodes a command APDU in any of the four ISO 7816-4 cases,
// short or extended. The card simulator uses it on what pcscd passes through.
func ParseCommand(b []byte) (Command, error) {
	if len(b) < 4 {
		return Command{}, fmt.Errorf("%w: command of %d bytes, need at least 4", ErrMalformed, len(b))
	}
	c := Command{CLA: b[0], INS: b[1], P1: b[2], P2: b[3]}
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
		return c, nil
	case len(body) == 1: // case 2, short
		c.Ne = decodeLe(int(body[0]), MaxShortNe)
		return c, nil
	case body[0] != 0: // case 3 or 4, short (a short Lc is never 0)
		nc := int(body[0])
		switch len(body) {
		case 1 + nc:
			c.Data = clone(body[1:])
		case 2 + nc:
			c.Data = clone(body[1 : 1+nc])
			c.Ne = decodeLe(int(body[1+nc]), MaxShortNe)
		default:
			return Command{}, fmt.Errorf("%w: Lc=%d but %d bytes follow", ErrMalformed, nc, len(body)-1)
		}
		return c, nil
	case len(body) == 3: // case 2, extended: 00 Le1 Le2
		c.Ne = decodeLe(int(body[1])<<8|int(body[2]), MaxExtendedNe)
		return c, nil
	case len(body) < 3:
		return Command{}, fmt.Errorf("%w: body of %d bytes fits no APDU case", ErrMalformed, len(body))
	}
	nc := int(body[1])<<8 | int(body[2]) // case 3 or 4, extended: 00 Lc1 Lc2 data [Le1 Le2]
	if nc == 0 {
		return Command{}, fmt.Errorf("%w: extended Lc of 0", ErrMalformed)
	}
	switch len(body) {
	case 3 + nc:
		c.Data = clone(body[3:])
	case 5 + nc:
		c.Data = clone(body[3 : 3+nc])
		c.Ne = decodeLe(int(body[3+nc])<<8|int(body[4+nc]), MaxExtendedNe)
	default:
		return Command{}, fmt.Errorf("%w: extended Lc=%d but %d bytes follow", ErrMalformed, nc, len(body)-3)
	}
	return c, nil
}

func decodeLe(le, max int) int {
	if le == 0 {
		return max
	}
	return le
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// Response is a response APDU: the data field and the status word SW1SW2.
type Response struct {
	Data []byte
	SW   uint16
}

// ParseResponse splits a response APDU into data and status word.
func ParseResponse(b []byte) (Response, error) {
	if len(b) < 2 {
		return Response{}, fmt.Errorf("%w: response of %d bytes has no status word", ErrMalformed, len(b))
	}
	n := len(b) - 2
	return Response{Data: clone(b[:n]), SW: uint16(b[n])<<8 | uint16(b[n+1])}, nil
}

// Bytes encodes r as data followed by SW1 SW2.
func (r Response) Bytes() []byte {
	b := make([]byte, 0, len(r.Data)+2)
	b = append(b, r.Data...)
	return append(b, byte(r.SW>>8), byte(r.SW))
}

// OK reports whether the status word is 9000.
func (r Response) OK() bool { return r.SW == SWOK }

// Err returns nil for 9000 and a *StatusError otherwise.
func (r Response) Err() error {
	if r.SW == SWOK {
		return nil
	}
	return &StatusError{SW: r.SW}
}
