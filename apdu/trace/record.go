package trace

import (
	"bytes"
	"fmt"

	"github.com/cardd/cardd/apdu"
)

// Recorder is an apdu.Transmitter that passes every command to T and keeps
// each exchange that got an answer, in order. It is not safe for concurrent
// use; neither is a card.
type Recorder struct {
	T apdu.Transmitter
	// Note, when set, is given to the next exchange recorded, then cleared:
	// a caller marks where a part of the tap begins.
	Note string

	exchanges []Exchange
	lost      []Lost
}

// Lost is a command that got no answer: the transport failed (the card left,
// the tap ran out of time). It cannot be in a trace, where every command has
// an answer, but a dump says so in a note.
type Lost struct {
	Command []byte
	Err     error
}

// Transmit sends cmd through T and records the exchange.
func (r *Recorder) Transmit(cmd []byte) ([]byte, error) {
	resp, err := r.T.Transmit(cmd)
	if err != nil || len(resp) < 2 {
		why := err
		if why == nil {
			// Lost says why: a dump writes it in a note.
			why = fmt.Errorf("%w: an answer of %d bytes has no status word", apdu.ErrMalformed, len(resp))
		}
		r.lost = append(r.lost, Lost{Command: bytes.Clone(cmd), Err: why})
		return resp, err
	}
	// Clones: the caller may reuse either buffer.
	r.exchanges = append(r.exchanges, Exchange{Command: bytes.Clone(cmd), Response: bytes.Clone(resp), Note: r.Note})
	r.Note = ""
	return resp, nil
}

// Exchanges returns a copy of the exchanges recorded so far, in order: a
// trace made of them may be blanked without changing the record.
func (r *Recorder) Exchanges() []Exchange {
	out := make([]Exchange, len(r.exchanges))
	for i, e := range r.exchanges {
		e.Command, e.Response = bytes.Clone(e.Command), bytes.Clone(e.Response)
		out[i] = e
	}
	return out
}

// Lost returns the commands that got no answer, in order.
func (r *Recorder) Lost() []Lost { return r.lost }
