package trace

import (
	"bytes"

	"github.com/cardd/cardd/apdu"
)

// Card plays a trace as a card: it answers the trace's ATR, and each command
// with the answer recorded for it, accepting the variants of a command that
// a real card accepts (docs/trace.md, "Replay rules"):
//
//  1. The same bytes as a recorded command: its answer. A command recorded
//     several times answers its recordings in order, then keeps the last
//     (in order: the nth time a command is sent, whatever its Le, it gets
//     its nth recording).
//  2. The same command but for Le (Le 00 or another Le, or none, for the
//     recorded Le): the recorded answer, preferring one that is not a 6Cxx
//     (wrong Le) answer; an Le shorter than the recorded data gets the first
//     Le bytes from READ BINARY and READ RECORD, and 6Cxx with the right
//     length from any other command.
//  3. A SELECT recorded with the other P2 of 00 (FCI wanted) and 0C (no
//     data wanted): the recorded status word without data.
//  4. Anything else answers as a card lacking it: SELECT and READ BINARY
//     6A82 (file not found), READ RECORD 6A83 (record not found), any
//     other 6D00 (instruction not supported).
//
// Reset (a power cycle) starts each command's recordings from the first
// again, so every tap replays the same. A Card serves one reader at a time,
// as a card does; it is not safe for concurrent use.
type Card struct {
	atr []byte
	ex  []Exchange
	// OnMiss, when set, is called with each command answered by rule 4, and
	// the answer: what the trace lacks, for the person replaying it.
	OnMiss func(cmd, answer []byte)

	exact map[string][]int // by command bytes: indexes into ex
	loose map[string][]int // by command bytes without Le
	used  map[string]int   // answers served, by command without Le
}

// NewCard makes a card that plays t.
func NewCard(t *Trace) *Card {
	c := &Card{atr: bytes.Clone(t.ATR), ex: t.Exchanges, exact: map[string][]int{}, loose: map[string][]int{}}
	for i, e := range t.Exchanges {
		c.exact[string(e.Command)] = append(c.exact[string(e.Command)], i)
		if cm, err := apdu.ParseCommand(e.Command); err == nil {
			k := looseKey(cm)
			c.loose[k] = append(c.loose[k], i)
		}
	}
	c.Reset()
	return c
}

// ATR returns the trace's ATR.
func (c *Card) ATR() []byte { return bytes.Clone(c.atr) }

// Reset is a power cycle: every command's recordings are played from the
// first again.
func (c *Card) Reset() { c.used = map[string]int{} }

// Status words of a card that lacks what it is asked for.
var (
	swFileNotFound   = []byte{0x6A, 0x82}
	swRecordNotFound = []byte{0x6A, 0x83}
	swINSNotSupport  = []byte{0x6D, 0x00}
	swWrongLength    = []byte{0x67, 0x00}
)

// Transmit answers cmd by the rules in Card's doc. It never fails.
func (c *Card) Transmit(cmd []byte) ([]byte, error) {
	cm, err := apdu.ParseCommand(cmd)
	key := "raw " + string(cmd) // a command that does not parse counts alone
	if err == nil {
		key = looseKey(cm)
	}
	if idx := c.exact[string(cmd)]; len(idx) > 0 {
		return bytes.Clone(c.ex[c.next(key, idx)].Response), nil
	}
	if err != nil {
		return c.miss(cmd, swWrongLength), nil
	}
	if idx := c.loose[key]; len(idx) > 0 {
		if ok := c.notWrongLe(idx); len(ok) > 0 {
			idx = ok
		}
		return withLe(cm, c.ex[c.next(key, idx)].Response), nil
	}
	if cm.INS == insSelect && (cm.P2 == 0x00 || cm.P2 == 0x0C) {
		other := cm
		other.P2 ^= 0x0C
		k := looseKey(other)
		if idx := c.loose[k]; len(idx) > 0 {
			resp := c.ex[c.next(k, idx)].Response
			sw := bytes.Clone(resp[len(resp)-2:])
			if sw[0] == 0x61 {
				sw = []byte{0x90, 0x00} // selected; the FCI that waited is not wanted
			}
			return sw, nil
		}
	}
	switch cm.INS {
	case insSelect, insReadBinary:
		return c.miss(cmd, swFileNotFound), nil
	case insReadRecord:
		return c.miss(cmd, swRecordNotFound), nil
	}
	return c.miss(cmd, swINSNotSupport), nil
}

// next picks the recording to answer from idx, recordings of a command
// that differ in Le at most: the nth, n counting the answers served to that
// command in any of its forms, or the last once all have been. So a read
// sent as it was recorded gets its answers in their order, whatever Le each
// time.
func (c *Card) next(key string, idx []int) int {
	n := c.used[key]
	c.used[key] = n + 1
	return idx[min(n, len(idx)-1)]
}

// notWrongLe keeps the recordings whose answer is not 6Cxx: that status
// says the recorded Le was wrong, which another Le may not be.
func (c *Card) notWrongLe(idx []int) []int {
	var ok []int
	for _, i := range idx {
		if r := c.ex[i].Response; r[len(r)-2] != 0x6C {
			ok = append(ok, i)
		}
	}
	return ok
}

func (c *Card) miss(cmd, answer []byte) []byte {
	if c.OnMiss != nil {
		c.OnMiss(bytes.Clone(cmd), bytes.Clone(answer))
	}
	return bytes.Clone(answer)
}

// looseKey is a command without its Le: CLA INS P1 P2 and the data.
func looseKey(cm apdu.Command) string {
	return string(append([]byte{cm.CLA, cm.INS, cm.P1, cm.P2}, cm.Data...))
}

// withLe fits a recorded answer to the Le of the command now sent.
func withLe(cm apdu.Command, resp []byte) []byte {
	data, sw := resp[:len(resp)-2], resp[len(resp)-2:]
	if cm.Ne == 0 || cm.Ne >= len(data) || sw[0] == 0x61 || sw[0] == 0x6C {
		return bytes.Clone(resp)
	}
	if cm.INS == insReadBinary || cm.INS == insReadRecord {
		return append(bytes.Clone(data[:cm.Ne]), sw...)
	}
	return []byte{0x6C, byte(len(data))} // 256 and up wrap to 00: "Le 00"
}
