package mifare

import (
	"errors"
	"testing"

	"github.com/cardd/cardd/apdu"
)

func TestUID(t *testing.T) {
	s := newScript(t, step{"FFCA000000", "043A5C21 9000"})
	uid, err := UID(s)
	if err != nil || string(uid) != string(testUID[:]) {
		t.Fatalf("UID = %X, %v", uid, err)
	}
	s.Done()

	s = newScript(t, step{"FFCA000000", "043A5C 9000"})
	if _, err := UID(s); !errors.Is(err, apdu.ErrMalformed) {
		t.Errorf("3-byte UID: %v, want ErrMalformed", err)
	}
	s = newScript(t, step{"FFCA000000", "6A81"})
	if _, err := UID(s); !errors.Is(err, apdu.ErrNotSupported) {
		t.Errorf("6A81: %v", err)
	}
}

func TestLoadKeyConventions(t *testing.T) {
	s := newScript(t,
		step{"FF82 00 01 06 A0A1A2A3A4A5", "9000"}, // ACS: volatile, slot 01
		step{"FF82 20 05 06 B0B1B2B3B4B5", "9000"}, // non-volatile (OMNIKEY style), slot 05
	)
	if err := LoadKey(s, KeyStructureVolatile, 0x01, testKeyA); err != nil {
		t.Fatal(err)
	}
	if err := LoadKey(s, KeyStructureNonVolatile, 0x05, testKeyB); err != nil {
		t.Fatal(err)
	}
	s.Done()
	s = newScript(t)
	if err := LoadKey(s, 0x40, 0, testKeyA); !errors.Is(err, ErrBadArgument) {
		t.Errorf("P1 40: %v", err)
	}
	s.Done()
}

func TestAuthenticate(t *testing.T) {
	s := newScript(t,
		step{"FF86000005 01 00 04 60 00", "9000"},
		step{"FF86000005 01 00 07 61 01", "6300"},
	)
	if err := Authenticate(s, 4, KeyTypeA, 0); err != nil {
		t.Fatal(err)
	}
	err := Authenticate(s, 7, KeyTypeB, 1)
	if sw, _ := apdu.SW(err); !errors.Is(err, ErrAuth) || sw != 0x6300 {
		t.Errorf("6300: %v (SW %04X), want ErrAuth carrying 6300", err, sw)
	}
	s.Done()
	for _, c := range []struct {
		block byte
		kt    KeyType
	}{{64, KeyTypeA}, {4, 0x62}} {
		if err := Authenticate(newScript(t), c.block, c.kt, 0); !errors.Is(err, ErrBadArgument) {
			t.Errorf("block %d %v: %v", c.block, c.kt, err)
		}
	}
}

func TestReadWriteBlock(t *testing.T) {
	val := "E8030000 17FCFFFF E8030000 05FA05FA"
	s := newScript(t,
		step{"FFB0000510", val + "9000"},
		step{"FFD6000510" + val, "9000"},
		step{"FFB0000510", "6300"},
		step{"FFB0000510", "E8030000 9000"},
		step{"FFD6000510" + val, "6300"},
		step{"FFD6000510" + val, "00 9000"},
	)
	b, err := ReadBlock(s, 5)
	if err != nil || b != block(t, val) {
		t.Fatalf("ReadBlock = %X, %v", b, err)
	}
	if err := WriteBlock(s, 5, b); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBlock(s, 5); !errors.Is(err, ErrOperationFailed) {
		t.Errorf("read 6300: %v", err)
	}
	if _, err := ReadBlock(s, 5); !errors.Is(err, apdu.ErrMalformed) {
		t.Errorf("short read: %v", err)
	}
	if err := WriteBlock(s, 5, b); !errors.Is(err, ErrOperationFailed) {
		t.Errorf("write 6300: %v", err)
	}
	if err := WriteBlock(s, 5, b); !errors.Is(err, apdu.ErrMalformed) {
		t.Errorf("write answered with data: %v", err)
	}
	s.Done()

	none := newScript(t)
	for _, blk := range []byte{0, 3, 7, 63, 64} {
		if err := WriteBlock(none, blk, b); !errors.Is(err, ErrBadArgument) {
			t.Errorf("WriteBlock(%d): %v, want ErrBadArgument", blk, err)
		}
	}
	if _, err := ReadBlock(none, 64); !errors.Is(err, ErrBadArgument) {
		t.Errorf("ReadBlock(64): %v", err)
	}
}

func TestWriteTrailer(t *testing.T) {
	s := newScript(t, step{"FFD6000710 A0A1A2A3A4A5 08778F 69 B0B1B2B3B4B5", "9000"})
	if err := WriteTrailer(s, 1, Trailer{KeyA: testKeyA, Access: WalletAccess, GPB: 0x69, KeyB: testKeyB}); err != nil {
		t.Fatal(err)
	}
	s.Done()
	none := newScript(t)
	bad := Trailer{KeyA: testKeyA, Access: AccessBits{0x08, 0x77, 0x8E}, KeyB: testKeyB}
	if err := WriteTrailer(none, 1, bad); !errors.Is(err, ErrBadAccessBits) {
		t.Errorf("malformed access bits: %v", err)
	}
	if err := WriteTrailer(none, 16, Trailer{Access: WalletAccess}); !errors.Is(err, ErrBadArgument) {
		t.Errorf("sector 16: %v", err)
	}
}

// The whole APDU sequence of a read and of a decrement, byte for byte.
func TestWalletAPDUs(t *testing.T) {
	trailerA := "000000000000 08778F 69 000000000000"
	// 1000 at sequence 7, in the value block and its backup alike.
	v1000b4 := "E8030000 17FCFFFF E8030000 07F807F8"
	v1000b5 := v1000b4
	s := newScript(t,
		step{"FF82000006 A0A1A2A3A4A5", "9000"},
		step{"FF86000005 01 00 04 60 00", "9000"},
		step{"FFB0000710", trailerA + "9000"},
		step{"FFB0000410", v1000b4 + "9000"},
		step{"FFB0000510", v1000b5 + "9000"},
	)
	bal, rep, err := testWallet().Read(s)
	if err != nil || bal != 1000 || rep != RepairNone {
		t.Fatalf("Read = %d, %v, %v", bal, rep, err)
	}
	s.Done()

	// 1000 - 250 = 750 = 0x02EE, at sequence 8.
	s = newScript(t,
		step{"FF82000106 B0B1B2B3B4B5", "9000"},
		step{"FF86000005 01 00 04 61 01", "9000"},
		step{"FFB0000710", trailerA + "9000"},
		step{"FFB0000410", v1000b4 + "9000"},
		step{"FFB0000510", v1000b5 + "9000"},
		step{"FFD6000410 EE020000 11FDFFFF EE020000 08F708F7", "9000"},
		step{"FFD6000510 EE020000 11FDFFFF EE020000 08F708F7", "9000"},
	)
	c, err := testWallet().Decrement(s, 250, nil)
	if err != nil || c != (Change{Old: 1000, New: 750, Seq: 7}) {
		t.Fatalf("Decrement = %+v, %v", c, err)
	}
	s.Done()

	// Non-volatile, preloaded keys: no LOAD KEYS at all.
	w := testWallet()
	w.Slots = KeySlotsNonVolatile
	s = newScript(t,
		step{"FF86000005 01 00 04 60 00", "9000"},
		step{"FFB0000710", trailerA + "9000"},
		step{"FFB0000410", v1000b4 + "9000"},
		step{"FFB0000510", v1000b5 + "9000"},
	)
	if bal, _, err := w.Read(s); err != nil || bal != 1000 {
		t.Fatalf("preloaded Read = %d, %v", bal, err)
	}
	s.Done()
	s = newScript(t,
		step{"FF82200006 A0A1A2A3A4A5", "9000"},
		step{"FF82200106 B0B1B2B3B4B5", "9000"},
	)
	if err := w.LoadKeys(s); err != nil {
		t.Fatal(err)
	}
	s.Done()
}
