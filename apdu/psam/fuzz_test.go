package psam

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cardd/cardd/apdu"
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
			s.f.Diversification, s.f.SecurityCode = DiversifyCity, true
		case 2:
			s.f.AppFileID, s.f.KeyIndex, s.f.Diversification = 0x8011, 3, DiversifyIssuer
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

// FuzzTerminalResponse answers the terminal functions with anything. They
// must never panic, and must fail with apdu.ErrMalformed or a status error
// unless the answer is well formed.
func FuzzTerminalResponse(f *testing.F) {
	f.Add(byte(2), []byte{0x61, 0x08}, []byte{0, 0, 0, 1, 0xF1, 0x5C, 0xAB, 0x75, 0x90, 0x00})
	f.Fuzz(func(t *testing.T, which byte, first, rest []byte) {
		sam := &script{answer: func(_ []byte, n int) []byte {
			if n == 1 {
				return bytes.Clone(first)
			}
			return bytes.Clone(rest)
		}}
		var err error
		switch which % 8 {
		case 0:
			_, err = Open(sam)
		case 1:
			_, err = TerminalID(sam)
		case 2:
			var serial uint32
			var mac1 [4]byte
			serial, mac1, err = InitForPurchase(sam, PurchaseMAC1Input{
				Card: vectorCard, Amount: 0x1000, Type: 0x06, When: vectorWhen, CardSerial: vectorSerial,
			})
			if err == nil {
				// The answer's data, gathered as the apdu package gathers it
				// from the same answers, is exactly serial ‖ MAC1.
				again := &script{answer: sam.answer}
				data, _ := apdu.Transceive(again, apdu.Command{CLA: claPBOC, INS: insInitSAMPurch})
				got := append(binary.BigEndian.AppendUint32(nil, serial), mac1[:]...)
				if !bytes.Equal(data, got) {
					t.Fatalf("serial %d MAC1 % X from answer data % X", serial, mac1, data)
				}
			}
		case 3:
			err = VerifyMAC2(sam, [4]byte{1, 2, 3, 4})
		case 4:
			_, err = SelectApp(sam, App{AID: []byte{0xA0, 0, 0, 0, 1}}, App{FileID: FileIDApp})
		case 5:
			var idx byte
			if idx, err = ReadKeyIndex(sam); err == nil && idx == 0 {
				t.Fatal("key index 0 accepted")
			}
		case 6:
			_, err = CardSecurityCode(sam)
		case 7:
			err = VerifySecurityCode(sam, [SecurityCodeLen]byte{1})
		}
		if err == nil {
			return
		}
		if _, isSW := apdu.SW(err); !isSW && !errors.Is(err, apdu.ErrMalformed) {
			t.Fatalf("error %v is neither a status nor ErrMalformed", err)
		}
	})
}
