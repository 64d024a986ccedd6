package psam

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
)

// The spec's purchase test vector: the card's INIT answer (random 11223344,
// offline counter 0), amount 1000 (hex) fen, 2012-02-29 13:51:00, and a
// card serial whose rightmost 8 bytes are 0102030405060708.
var (
	vectorCard = epurse.PurchaseInit{
		Balance: 50000, OfflineCounter: 0, KeyVersion: 0x01, AlgID: 0x00,
		Random: [4]byte{0x11, 0x22, 0x33, 0x44},
	}
	vectorWhen   = time.Date(2012, 2, 29, 13, 51, 0, 0, time.UTC)
	vectorSerial = []byte{0x00, 0x01, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}
)

// vectorInput is the spec's purchase test vector as InitForPurchase takes it.
func vectorInput(t *testing.T) PurchaseMAC1Input {
	return PurchaseMAC1Input{
		Card:       vectorCard,
		Amount:     0x1000,
		Type:       epurse.TxEPPurchase,
		When:       vectorWhen,
		CardSerial: bytes.Clone(vectorSerial),
	}
}

func TestInitForPurchaseBytes(t *testing.T) {
	sam := &script{answer: func(cmd []byte, n int) []byte {
		if n == 1 {
			return []byte{0x61, 0x08}
		}
		return unhex(t, "00000001 F15CAB75 9000")
	}}
	serial, mac1, err := InitForPurchase(sam, vectorInput(t))
	if err != nil {
		t.Fatal(err)
	}
	if serial != 1 || mac1 != [4]byte{0xF1, 0x5C, 0xAB, 0x75} {
		t.Fatalf("serial %d MAC1 % X", serial, mac1)
	}
	want := []string{
		// Sent without Le, as T=0 carries none for a case-4 command.
		"807000001C" + "11223344" + "0000" + "00001000" + "06" + "20120229" + "135100" + "01" + "00" + "0102030405060708",
		"00C0000008",
	}
	if got := sam.sentHex(); !slices.Equal(got, want) {
		t.Fatalf("sent\n%v\nwant\n%v", got, want)
	}
}

func TestInitForPurchaseTwoLevel(t *testing.T) {
	// A T=1 SAM may answer directly, without 61 08: that works too.
	sam := &script{answer: func([]byte, int) []byte { return unhex(t, "00000009 01020304 9000") }}
	in := vectorInput(t)
	in.IssuerFactor = unhex(t, "B1B1BEA9B1B1BEA9")
	if serial, _, err := InitForPurchase(sam, in); err != nil || serial != 9 {
		t.Fatalf("serial %d, %v", serial, err)
	}
	got := sam.sentHex()[0]
	if got[:10] != "8070000024" || got[len(got)-32:] != "0102030405060708B1B1BEA9B1B1BEA9" {
		t.Fatalf("sent %s", got)
	}
}

func TestInitForPurchaseRefusesBadInput(t *testing.T) {
	for name, c := range map[string]struct {
		change func(*PurchaseMAC1Input)
		want   error
	}{
		"negative amount": {func(in *PurchaseMAC1Input) { in.Amount = -1 }, epurse.ErrBadAmount},
		"amount too big":  {func(in *PurchaseMAC1Input) { in.Amount = epurse.MaxAmount + 1 }, epurse.ErrBadAmount},
		"no time":         {func(in *PurchaseMAC1Input) { in.When = time.Time{} }, epurse.ErrBadArgument},
		"short serial":    {func(in *PurchaseMAC1Input) { in.CardSerial = in.CardSerial[:7] }, epurse.ErrBadArgument},
		"7-byte factor":   {func(in *PurchaseMAC1Input) { in.IssuerFactor = make([]byte, 7) }, epurse.ErrBadArgument},
	} {
		sam := &script{answer: func([]byte, int) []byte { return []byte{0x90, 0x00} }}
		in := vectorInput(t)
		c.change(&in)
		if _, _, err := InitForPurchase(sam, in); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
		if len(sam.sent) != 0 {
			t.Errorf("%s: sent %v", name, sam.sentHex())
		}
	}
}

func TestTerminalAnswersAsErrors(t *testing.T) {
	answer := func(b string) *script {
		return &script{answer: func([]byte, int) []byte { return unhex(t, b) }}
	}
	for name, c := range map[string]struct {
		run  func(apdu.Transmitter) error
		resp string
		want error
	}{
		"init: key not found": {func(tr apdu.Transmitter) error { _, _, err := InitForPurchase(tr, vectorInput(t)); return err }, "9403", apdu.ErrKeyIndex},
		"init: 9000 short":    {func(tr apdu.Transmitter) error { _, _, err := InitForPurchase(tr, vectorInput(t)); return err }, "00000001F15CAB 9000", apdu.ErrMalformed},
		"init: no answer":     {func(tr apdu.Transmitter) error { _, _, err := InitForPurchase(tr, vectorInput(t)); return err }, "9000", apdu.ErrMalformed},
		"init: not in app":    {func(tr apdu.Transmitter) error { _, _, err := InitForPurchase(tr, vectorInput(t)); return err }, "6985", apdu.ErrConditionsOfUse},
		"mac2: wrong":         {func(tr apdu.Transmitter) error { return VerifyMAC2(tr, [4]byte{1, 2, 3, 4}) }, "9302", apdu.ErrMACInvalid},
		"mac2: no MAC1":       {func(tr apdu.Transmitter) error { return VerifyMAC2(tr, [4]byte{1, 2, 3, 4}) }, "6985", apdu.ErrConditionsOfUse},
		"mac2: with data":     {func(tr apdu.Transmitter) error { return VerifyMAC2(tr, [4]byte{1, 2, 3, 4}) }, "01 9000", apdu.ErrMalformed},
		"terminal id short":   {func(tr apdu.Transmitter) error { _, err := TerminalID(tr); return err }, "0011223344 9000", apdu.ErrMalformed},
		"terminal id gone":    {func(tr apdu.Transmitter) error { _, err := TerminalID(tr); return err }, "6A82", apdu.ErrFileNotFound},
		"select MF locked":    {SelectMF, "6283", apdu.ErrFileInvalidated},
	} {
		err := c.run(answer(c.resp))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

func TestVerifyMAC2Bytes(t *testing.T) {
	sam := &script{answer: func([]byte, int) []byte { return []byte{0x90, 0x00} }}
	if err := VerifyMAC2(sam, [4]byte{0x56, 0x98, 0x8A, 0x13}); err != nil {
		t.Fatal(err)
	}
	if got := sam.sentHex(); !slices.Equal(got, []string{"807200000456988A13"}) {
		t.Fatalf("sent %v", got)
	}
}

func TestSelectMFByNameFallback(t *testing.T) {
	sam := &script{answer: func(cmd []byte, n int) []byte {
		if n == 1 {
			return []byte{0x6A, 0x82}
		}
		return []byte{0x90, 0x00}
	}}
	if err := SelectMF(sam); err != nil {
		t.Fatal(err)
	}
	want := []string{"00A40000023F00", "00A404000E315041592E5359532E4444463031"}
	if got := sam.sentHex(); !slices.Equal(got, want) {
		t.Fatalf("sent %v", got)
	}
	sam = &script{answer: func([]byte, int) []byte { return []byte{0x6A, 0x82} }}
	if err := SelectMF(sam); !errors.Is(err, apdu.ErrFileNotFound) {
		t.Fatalf("no MF at all: %v", err)
	}
}
