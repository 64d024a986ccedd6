package psam

import (
	"encoding/hex"
	"github.com/cardd/cardd/internal/apdutest"
	"strings"
	"testing"

	"github.com/cardd/cardd/apdu/epurse"
)

// unhex is apdutest.Unhex: hex with spaces, as the spec writes it.
func unhex(t testing.TB, s string) []byte { return apdutest.Unhex(t, s) }

// testMasters stand for the reference host's issuer master keys.
var testMasters = epurse.MasterKeys{
	DLK: epurse.Key16{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11},
	DPK: epurse.Key16{0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01},
	DTK: epurse.Key16{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10},
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

// sentHex renders the recorded commands as upper-case hex without spaces.
func (s *script) sentHex() []string {
	out := make([]string, len(s.sent))
	for i, c := range s.sent {
		out[i] = strings.ToUpper(hex.EncodeToString(c))
	}
	return out
}
