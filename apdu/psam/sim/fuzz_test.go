package psamsim

import (
	"bytes"
	"testing"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/psam"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/.

// splitScript cuts a fuzz input into command APDUs: each is a length byte
// and that many bytes (fewer at the end).
func splitScript(b []byte) [][]byte {
	var cmds [][]byte
	for len(b) > 0 {
		n := min(int(b[0]), len(b)-1)
		cmds = append(cmds, b[1:1+n])
		b = b[1+n:]
	}
	return cmds
}

// FuzzSimPSAMTransmit sends any sequence of APDUs to a simulated PSAM. It
// must never panic or fail in memory, must always answer a status word, must
// spend exactly one serial per INIT SAM FOR PURCHASE it answers 61 08, and
// must accept a MAC2 only right after such an INIT.
func FuzzSimPSAMTransmit(f *testing.F) {
	f.Add([]byte{7, 0x00, 0xA4, 0x00, 0x0C, 0x02, 0x10, 0x01})
	f.Fuzz(func(t *testing.T, script []byte) {
		s := newMemSAM(t)
		// The PSAM plays a profile chosen by the script's length: plain, a
		// city PSAM keyed twice that needs the security code, a T-Union
		// PSAM at 8011 with key index 3.
		switch len(script) % 3 {
		case 1:
			s.f.Diversification, s.f.SecurityCode = psam.DiversifyCity, true
		case 2:
			s.f.AppFileID, s.f.KeyIndex, s.f.Diversification = 0x8011, 3, psam.DiversifyIssuer
		}
		armed := false // the last command other than GET RESPONSE was an answered INIT
		for i, cmd := range splitScript(script) {
			if i == 3 && len(script)%5 == 0 {
				s.Reset()
				armed = false
			}
			before := s.File().Serial
			out, err := s.Transmit(bytes.Clone(cmd))
			if err != nil {
				t.Fatalf("Transmit(% X) in memory: %v", cmd, err)
			}
			resp, err := apdu.ParseResponse(out)
			if err != nil {
				t.Fatalf("Transmit(% X) = % X: %v", cmd, out, err)
			}
			c, perr := apdu.ParseCommand(cmd)
			isInit := perr == nil && c.CLA == claPBOC && c.INS == insInitSAMPurch
			answered := isInit && resp.SW == 0x6108 && len(resp.Data) == 0
			after := s.File().Serial
			switch {
			case answered && after != before+1:
				t.Fatalf("INIT answered 6108 but serial went %d → %d", before, after)
			case !answered && after != before:
				t.Fatalf("% X answered % X but serial went %d → %d", cmd, out, before, after)
			}
			isGet := perr == nil && c.CLA == claISO && c.INS == insGetResponse
			if resp.SW&0xFF00 == 0x6100 && len(resp.Data) > 0 && !isGet {
				// Only a GET RESPONSE taking part of an answer sends data and
				// 61xx together; a command announces its answer with 61xx alone.
				t.Fatalf("% X: data with 61xx: % X", cmd, out)
			}
			if perr == nil && c.CLA == claPBOC && c.INS == insCreditSAMPurch && resp.SW == apdu.SWOK && !armed {
				t.Fatalf("MAC2 % X accepted without its INIT", cmd)
			}
			if !isGet {
				armed = answered
			}
		}
	})
}
