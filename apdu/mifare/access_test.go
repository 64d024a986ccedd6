package mifare

import (
	"errors"
	"testing"
)

func TestWalletAndTransportAccess(t *testing.T) {
	for _, c := range []struct {
		name string
		a    AccessBits
		want [4]AccessCond
	}{
		{"wallet 08 77 8F", WalletAccess, [4]AccessCond{CondValue, CondValue, CondValue, CondTrailerWallet}},
		{"transport FF 07 80", TransportAccess, [4]AccessCond{CondTransport, CondTransport, CondTransport, CondTrailerTransport}},
	} {
		got, err := c.a.Conds()
		if err != nil || got != c.want {
			t.Errorf("%s: Conds = %v, %v; want %v", c.name, got, err, c.want)
		}
		if enc := EncodeAccessBits(c.want); enc != c.a {
			t.Errorf("%s: EncodeAccessBits = %v", c.name, enc)
		}
	}
	if err := isWallet([4]AccessCond{CondValue, CondValue, CondValue, CondTrailerWallet}, 0, 1); err != nil {
		t.Errorf("wallet conditions refused: %v", err)
	}
	c, _ := TransportAccess.Conds()
	if err := isWallet(c, 0, 1); !errors.Is(err, ErrNotWallet) {
		t.Errorf("transport conditions as a wallet: %v, want ErrNotWallet", err)
	}
}

func TestAccessBitsRoundTripAll(t *testing.T) {
	for n := range 1 << 12 {
		var c [4]AccessCond
		for i := range c {
			c[i] = AccessCond(n >> (3 * i) & 7)
		}
		a := EncodeAccessBits(c)
		got, err := a.Conds()
		if err != nil || got != c {
			t.Fatalf("%v encodes as %v, decodes as %v, %v", c, a, got, err)
		}
	}
}

func TestMalformedAccessBitsRefused(t *testing.T) {
	// Every bit is stored twice, once inverted: one flipped bit anywhere
	// must be refused, since a card would lock the sector for it.
	for _, good := range []AccessBits{WalletAccess, TransportAccess} {
		for i := range 3 {
			for bit := range 8 {
				a := good
				a[i] ^= 1 << bit
				if err := a.Validate(); !errors.Is(err, ErrBadAccessBits) {
					t.Errorf("%v with byte %d bit %d flipped (%v): %v", good, i, bit, a, err)
				}
				tr := Trailer{KeyA: testKeyA, Access: a, GPB: DefaultGPB, KeyB: testKeyB}
				if _, err := tr.Bytes(); !errors.Is(err, ErrBadAccessBits) {
					t.Errorf("Trailer.Bytes with %v: %v", a, err)
				}
			}
		}
	}
	if err := (AccessBits{}).Validate(); !errors.Is(err, ErrBadAccessBits) {
		t.Errorf("00 00 00: %v", err)
	}
}

func TestTrailerBytes(t *testing.T) {
	tr := Trailer{KeyA: testKeyA, Access: WalletAccess, GPB: 0x69, KeyB: testKeyB}
	b, err := tr.Bytes()
	want := block(t, "A0A1A2A3A4A5 08778F 69 B0B1B2B3B4B5")
	if err != nil || b != want {
		t.Fatalf("Bytes = %X, %v; want %X", b, err, want)
	}
	back, err := ParseTrailer(b[:])
	if err != nil || back != tr {
		t.Fatalf("ParseTrailer = %+v, %v", back, err)
	}
	if _, err := ParseTrailer(b[:15]); err == nil {
		t.Error("ParseTrailer of 15 bytes succeeded")
	}
	if CondValue.String() != "110" || WalletAccess.String() != "08 77 8F" {
		t.Errorf("String: %v %v", CondValue, WalletAccess)
	}
}
