package psam

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cardd/cardd/apdu"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/.

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
