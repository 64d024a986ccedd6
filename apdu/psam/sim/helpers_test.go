package psamsim

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/internal/apdutest"
)

// unhex is apdutest.Unhex: hex with spaces, as the spec writes it.
func unhex(t testing.TB, s string) []byte { return apdutest.Unhex(t, s) }

func key16(t testing.TB, s string) epurse.Key16 {
	t.Helper()
	var k epurse.Key16
	if n := copy(k[:], unhex(t, s)); n != 16 {
		t.Fatalf("key %q is %d bytes", s, n)
	}
	return k
}

// testMasters stand for the reference host's issuer master keys.
var testMasters = epurse.MasterKeys{
	DLK: epurse.Key16{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11},
	DPK: epurse.Key16{0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01},
	DTK: epurse.Key16{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10},
}

// testTerm is the spec's terminal id, 001122334455.
var testTerm = [6]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}

// newMemSAM is a PSAM in memory holding testMasters' DPK.
func newMemSAM(t testing.TB) *SimPSAM {
	t.Helper()
	f, err := NewSAMFile(testTerm, testMasters)
	if err != nil {
		t.Fatal(err)
	}
	return NewSimPSAM(f, "")
}

// script is a fake PSAM: it records every command and answers with answer,
// which sees the commands so far.
type script struct {
	sent   [][]byte
	answer func(cmd []byte, n int) []byte
}

func (s *script) Transmit(cmd []byte) ([]byte, error) {
	s.sent = append(s.sent, append([]byte(nil), cmd...))
	return s.answer(cmd, len(s.sent)), nil
}

// recorder passes commands to a real transmitter and records them.
type recorder struct {
	t    apdu.Transmitter
	sent []string
}

func (r *recorder) Transmit(cmd []byte) ([]byte, error) {
	r.sent = append(r.sent, strings.ToUpper(hex.EncodeToString(cmd)))
	return r.t.Transmit(cmd)
}

// raw sends one APDU written in hex to a transmitter and returns the
// response data and status word, without any 61xx handling.
func raw(t testing.TB, tr apdu.Transmitter, cmd string) ([]byte, uint16) {
	t.Helper()
	out, err := tr.Transmit(unhex(t, cmd))
	if err != nil {
		t.Fatalf("Transmit(%s): %v", cmd, err)
	}
	r, err := apdu.ParseResponse(out)
	if err != nil {
		t.Fatalf("Transmit(%s) = % X: %v", cmd, out, err)
	}
	return r.Data, r.SW
}
