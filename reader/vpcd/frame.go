package vpcd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxPayload is the largest payload a frame can carry: its length is a
// 2-byte big-endian number.
const MaxPayload = 0xFFFF

// ErrEmptyFrame is returned, wrapped, for a frame whose length is zero.
// vpcd never sends one, and treats one it receives as the card failing, so
// it is a protocol error both ways.
var ErrEmptyFrame = errors.New("vpcd: empty frame")

// ReadFrame reads one frame from r and returns its payload. It returns io.EOF
// only when r ends cleanly between frames; a frame cut short by the peer
// gives an error wrapping io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err // io.EOF between frames, io.ErrUnexpectedEOF inside the header
	}
	n := binary.BigEndian.Uint16(hdr[:])
	if n == 0 {
		return nil, ErrEmptyFrame
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // the header promised a payload
		}
		return nil, fmt.Errorf("vpcd: reading %d-byte payload: %w", n, err)
	}
	return p, nil
}

// WriteFrame writes p to w as one frame. It sends header and payload in a
// single Write, so a frame never goes out as two TCP segments waiting on
// each other.
func WriteFrame(w io.Writer, p []byte) error {
	if len(p) == 0 {
		return ErrEmptyFrame
	}
	if len(p) > MaxPayload {
		return fmt.Errorf("vpcd: %d-byte payload exceeds %d", len(p), MaxPayload)
	}
	b := make([]byte, 2+len(p))
	binary.BigEndian.PutUint16(b, uint16(len(p)))
	copy(b[2:], p)
	_, err := w.Write(b)
	return err
}
