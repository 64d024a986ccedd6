// Package apdutest holds the test helpers of the APDU packages (epurse,
// mifare, psam): hex written as the spec writes it, and a scripted card
// that checks every command byte for byte.
package apdutest

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// Unhex decodes hex written with spaces for readability, as the spec does.
func Unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q in test: %v", s, err)
	}
	return b
}

// Step is one exchange of a Script: the command expected and the response
// given, in hex. An array, not a struct, so that tests write the pairs as
// the spec lists them ({"00B0950000", "…9000"}) without field names.
type Step [2]string

// Script is a card that expects exact command APDUs, byte for byte, and
// gives canned answers: the spec's APDUs are checked, not just that a
// simulated card agrees with the terminal.
type Script struct {
	t     testing.TB
	steps []Step
	n     int
}

// NewScript returns a card that plays steps in order.
func NewScript(t testing.TB, steps ...Step) *Script { return &Script{t: t, steps: steps} }

// Transmit checks cmd against the next step and returns its response.
func (s *Script) Transmit(cmd []byte) ([]byte, error) {
	s.t.Helper()
	if s.n >= len(s.steps) {
		s.t.Fatalf("unexpected command %X after the script's end", cmd)
	}
	st := s.steps[s.n]
	s.n++
	if want := Unhex(s.t, st[0]); !bytes.Equal(cmd, want) {
		s.t.Fatalf("command %d = %X, want %X", s.n, cmd, want)
	}
	return Unhex(s.t, st[1]), nil
}

// Done checks that every step was played.
func (s *Script) Done() {
	s.t.Helper()
	if s.n != len(s.steps) {
		s.t.Errorf("script: %d of %d commands sent", s.n, len(s.steps))
	}
}
