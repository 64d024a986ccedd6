package mifaresim

import (
	"errors"
	"testing"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/mifare"
	"github.com/cardd/cardd/reader/vpcd"
)

var _ vpcd.Card = (*SimCard)(nil)

func TestATR(t *testing.T) {
	card := newTestCard(t, 0)
	atr := card.ATR()
	want := unhex(t, "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A")
	if string(atr) != string(want) {
		t.Fatalf("ATR = %X", atr)
	}
	var tck byte
	for _, b := range atr[1:] {
		tck ^= b
	}
	if tck != 0 {
		t.Errorf("TCK does not check: XOR from T0 on is %02X", tck)
	}
	atr[0] = 0 // a copy
	if card.ATR()[0] != 0x3B {
		t.Error("ATR returns the card's own slice")
	}
}

func TestSimUIDAndErrors(t *testing.T) {
	card := newTestCard(t, 0)
	if uid := mustSW(t, card, "FFCA000000", 0x9000); string(uid) != string(testUID[:]) {
		t.Errorf("UID = %X", uid)
	}
	mustSW(t, card, "FFCA000002", 0x6C04)
	mustSW(t, card, "FFCA010000", 0x6A81) // no ATS on a MIFARE Classic
	mustSW(t, card, "00A4040000", 0x6E00)
	mustSW(t, card, "FF00000000", 0x6D00)
	mustSW(t, card, "FF", 0x6700)
	mustSW(t, card, "FF82000005 A0A1A2A3A4", 0x6989)
	mustSW(t, card, "FF82002006 A0A1A2A3A4A5", 0x6988)
	mustSW(t, card, "FF82800006 A0A1A2A3A4A5", 0x6983)
	mustSW(t, card, "FF82400006 A0A1A2A3A4A5", 0x6985)
	mustSW(t, card, "FF86000005 01 00 04 62 00", 0x6986)
	mustSW(t, card, "FF86000005 01 00 04 60 00", 0x6300) // empty slot
	mustSW(t, card, "FFB0004010", 0x6300)                // block 64
	// Through the terminal: UID agrees.
	if uid, err := mifare.UID(card); err != nil || string(uid) != string(testUID[:]) {
		t.Errorf("UID() = %X, %v", uid, err)
	}
}

// auth loads key into slot 0 and authenticates block with it as kt.
func auth(t *testing.T, card *SimCard, block byte, kt mifare.KeyType, key mifare.Key) {
	t.Helper()
	if err := mifare.LoadKey(card, 0, 0, key); err != nil {
		t.Fatal(err)
	}
	if err := mifare.Authenticate(card, block, kt, 0); err != nil {
		t.Fatal(err)
	}
}

func TestSimWalletAccess(t *testing.T) {
	card := newTestCard(t, 1000)
	// Key A: read, decrement; no write, no increment, no trailer write.
	auth(t, card, 4, mifare.KeyTypeA, testKeyA)
	if b, err := mifare.ReadBlock(card, 4); err != nil || b != mifare.EncodeValue(1000, 0) {
		t.Fatalf("read = %X, %v", b, err)
	}
	tr, err := mifare.ReadBlock(card, 7)
	if want := block(t, "000000000000 08778F 69 000000000000"); err != nil || tr != want {
		t.Fatalf("trailer read with key A = %X, %v; keys must read as zeros", tr, err)
	}
	mustSW(t, card, "FFD7000405 02 00000064", 0x9000) // decrement 100
	if v := mustSW(t, card, "FFB1000404", 0x9000); string(v) != string(unhex(t, "00000384")) {
		t.Fatalf("read value = %X, want 900", v)
	}
	mustSW(t, card, "FFD7000405 01 00000064", 0x6300) // increment: key B only
	if err := mifare.WriteBlock(card, 4, mifare.EncodeValue(5000, 4)); !errors.Is(err, mifare.ErrOperationFailed) {
		t.Fatalf("write with key A: %v", err)
	}
	mustSW(t, card, "FFD7000405 00 00001388", 0x6300) // store is a write
	mustSW(t, card, "FFD7000402 03 05", 0x9000)       // restore 4 into 5: A may
	if err := mifare.WriteTrailer(card, 1, mifare.Trailer{KeyA: mifare.TransportKey, Access: mifare.TransportAccess, KeyB: mifare.TransportKey}); !errors.Is(err, mifare.ErrOperationFailed) {
		t.Fatalf("trailer write with key A: %v", err)
	}
	if _, err := mifare.ReadBlock(card, 8); !errors.Is(err, mifare.ErrOperationFailed) {
		t.Fatalf("read outside the authenticated sector: %v", err)
	}
	f := card.File()
	if v, a, err := mifare.ParseValue(f.Blocks[5][:]); err != nil || v != 900 || a != f.Blocks[4][12] {
		t.Fatalf("restored block = %d addr %d, %v; want 900 with block 4's address byte", v, a, err)
	}

	// Key B: write and increment too.
	auth(t, card, 5, mifare.KeyTypeB, testKeyB)
	mustSW(t, card, "FFD7000405 01 000000C8", 0x9000) // +200
	mustSW(t, card, "FFD7000505 00 00000000", 0x9000) // store 0 in 5
	if err := mifare.WriteBlock(card, 6, block(t, "00112233445566778899AABBCCDDEEFF")); err != nil {
		t.Fatal(err)
	}
	mustSW(t, card, "FFB1000604", 0x6300) // not a value block
	mustSW(t, card, "FFD7000605 02 00000001", 0x6300)
	f = card.File()
	if v, _, _ := mifare.ParseValue(f.Blocks[4][:]); v != 1100 {
		t.Fatalf("block 4 = %d, want 1100", v)
	}
	// Limits of the value operations.
	mustSW(t, card, "FFD7000405 02 FFFFFFFF", 0x6300) // negative operand
	mustSW(t, card, "FFD7000405 01 7FFFFFFF", 0x6300) // overflow
	mustSW(t, card, "FFD7000405 07 00000001", 0x6300) // no such operation
	mustSW(t, card, "FFD7000403 01 0000", 0x6700)
	mustSW(t, card, "FFD7000402 03 08", 0x6300) // restore out of the sector
	mustSW(t, card, "FFD7000702 03 04", 0x6300) // from the trailer
	// Key B reads the trailer's access bits but not the keys.
	if tr, err := mifare.ReadBlock(card, 7); err != nil || tr != block(t, "000000000000 08778F 69 000000000000") {
		t.Fatalf("trailer read with key B = %X, %v", tr, err)
	}
}

func TestSimAuthLostOnResetAndFailure(t *testing.T) {
	card := newTestCard(t, 1000)
	auth(t, card, 4, mifare.KeyTypeA, testKeyA)
	if _, err := mifare.ReadBlock(card, 4); err != nil {
		t.Fatal(err)
	}
	card.Reset()
	if _, err := mifare.ReadBlock(card, 4); !errors.Is(err, mifare.ErrOperationFailed) {
		t.Fatalf("read after Reset: %v, want 6300", err)
	}
	// Keys live in the reader: still loaded after the card's reset.
	if err := mifare.Authenticate(card, 4, mifare.KeyTypeA, 0); err != nil {
		t.Fatal(err)
	}
	if err := mifare.LoadKey(card, 0, 1, mifare.TransportKey); err != nil {
		t.Fatal(err)
	}
	if err := mifare.Authenticate(card, 4, mifare.KeyTypeA, 1); !errors.Is(err, mifare.ErrAuth) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := mifare.ReadBlock(card, 4); !errors.Is(err, mifare.ErrOperationFailed) {
		t.Fatalf("read after a failed authentication: %v, want 6300", err)
	}
}

func TestSimTransportSector(t *testing.T) {
	card := newTestCard(t, 0)
	auth(t, card, 8, mifare.KeyTypeA, mifare.TransportKey)
	// Key B is readable in the transport configuration.
	if tr, err := mifare.ReadBlock(card, 11); err != nil || tr != block(t, "000000000000 FF0780 69 FFFFFFFFFFFF") {
		t.Fatalf("transport trailer = %X, %v", tr, err)
	}
	if err := mifare.WriteBlock(card, 8, block(t, "00112233445566778899AABBCCDDEEFF")); err != nil {
		t.Fatal(err)
	}
	// Key A makes it a wallet sector with new keys.
	if err := mifare.WriteTrailer(card, 2, mifare.Trailer{KeyA: testKeyA, Access: mifare.WalletAccess, GPB: mifare.DefaultGPB, KeyB: testKeyB}); err != nil {
		t.Fatal(err)
	}
	if err := mifare.Authenticate(card, 8, mifare.KeyTypeA, 0); !errors.Is(err, mifare.ErrAuth) {
		t.Fatalf("old key after rekeying: %v", err)
	}
	auth(t, card, 8, mifare.KeyTypeB, testKeyB)
	if err := mifare.WriteBlock(card, 8, mifare.EncodeValue(42, 8)); err != nil {
		t.Fatal(err)
	}

	// In a transport sector, authenticating with key B works, but key B is
	// readable and so is no key: every access is refused.
	card = newTestCard(t, 0)
	if err := mifare.LoadKey(card, 0, 0, mifare.TransportKey); err != nil {
		t.Fatal(err)
	}
	if err := mifare.Authenticate(card, 8, mifare.KeyTypeB, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := mifare.ReadBlock(card, 8); !errors.Is(err, mifare.ErrOperationFailed) {
		t.Fatalf("read with a readable key B: %v", err)
	}
}

func TestSimBlock0ReadOnly(t *testing.T) {
	card := newTestCard(t, 0)
	auth(t, card, 0, mifare.KeyTypeA, mifare.TransportKey)
	b0, err := mifare.ReadBlock(card, 0)
	if err != nil || b0 != card.File().Blocks[0] {
		t.Fatal(err)
	}
	mustSW(t, card, "FFD6000010 00000000000000000000000000000000", 0x6300)
	mustSW(t, card, "FFD7000005 00 00000001", 0x6300)
}

func TestSimMalformedTrailerLocksSector(t *testing.T) {
	// What the terminal never does (WriteTrailer refuses it): a raw write of
	// malformed access bits. The card takes it and the sector is gone.
	card := newTestCard(t, 0)
	auth(t, card, 8, mifare.KeyTypeA, mifare.TransportKey)
	mustSW(t, card, "FFD6000B10 FFFFFFFFFFFF 0807 80 69 FFFFFFFFFFFF", 0x9000)
	mustSW(t, card, "FFB0000810", 0x6300)
	auth(t, card, 8, mifare.KeyTypeA, mifare.TransportKey)
	for _, cmd := range []string{"FFB0000810", "FFB0000B10", "FFD6000810 00000000000000000000000000000000"} {
		mustSW(t, card, cmd, 0x6300)
	}
}

func TestSimPartialTrailerWrite(t *testing.T) {
	// In the wallet configuration key B may write the keys and the access
	// bits; with condition 100 (key B writes keys only) the access bits
	// sent are ignored.
	card := newTestCard(t, 0)
	auth(t, card, 4, mifare.KeyTypeB, testKeyB)
	keysOnly := mifare.EncodeAccessBits([4]mifare.AccessCond{mifare.CondValue, mifare.CondValue, mifare.CondValue, 0b100})
	if err := mifare.WriteTrailer(card, 1, mifare.Trailer{KeyA: testKeyA, Access: keysOnly, GPB: mifare.DefaultGPB, KeyB: testKeyB}); err != nil {
		t.Fatal(err)
	}
	auth(t, card, 4, mifare.KeyTypeB, testKeyB)
	if err := mifare.WriteTrailer(card, 1, mifare.Trailer{KeyA: mifare.TransportKey, Access: mifare.TransportAccess, GPB: 0, KeyB: mifare.TransportKey}); err != nil {
		t.Fatal(err)
	}
	tr, _ := mifare.ParseTrailer(card.File().Blocks[7][:])
	if tr.KeyA != mifare.TransportKey || tr.KeyB != mifare.TransportKey || tr.Access != keysOnly || tr.GPB != mifare.DefaultGPB {
		t.Fatalf("trailer after a keys-only write: access %v gpb %02X", tr.Access, tr.GPB)
	}
}

func TestSimTear(t *testing.T) {
	card := newTestCard(t, 1000)
	auth(t, card, 4, mifare.KeyTypeB, testKeyB)
	card.TearNextWriteAt(2, TearCorrupt)
	mustSW(t, card, "FFD7000405 02 00000001", 0x9000) // write 1: not torn
	_, err := card.Transmit(unhex(t, "FFD7000405 02 00000001"))
	if !errors.Is(err, ErrTorn) || !errors.Is(err, vpcd.ErrTorn) {
		t.Fatalf("torn write: %v", err)
	}
	if _, err := card.Transmit(unhex(t, "FFCA000000")); !errors.Is(err, ErrTorn) {
		t.Fatalf("command to a pulled card: %v", err)
	}
	if _, err := mifare.DecodeValue(card.File().Blocks[4][:], 4); err == nil {
		t.Fatal("corrupt tear left a valid value block")
	}
	card.Reset()
	mustSW(t, card, "FFCA000000", 0x9000)
	mustSW(t, card, "FFB0000410", 0x6300) // authentication lost

	// The corrupt tear of a write that changes nothing still shows.
	b := mifare.EncodeValue(7, 4)
	if got := torn(b, b); got == b {
		t.Fatal("torn(b, b) == b")
	} else if _, _, err := mifare.ParseValue(got[:]); err == nil {
		t.Fatal("torn(b, b) is a valid value block")
	}
	// Disarmed: no tear.
	card.TearNextWriteAt(1, TearCorrupt)
	card.TearNextWriteAt(0, TearCorrupt)
	auth(t, card, 4, mifare.KeyTypeB, testKeyB)
	mustSW(t, card, "FFD7000405 00 00000001", 0x9000)
}

func TestSimResponsesParse(t *testing.T) {
	// Every answer of the card is a response APDU.
	card := newTestCard(t, 0)
	for _, cmd := range []string{"FFCA000000", "FFB0000010", "FF86000005 0100006000", "FFB1000004", "FFCA000000 00"} {
		raw, err := card.Transmit(unhex(t, cmd))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := apdu.ParseResponse(raw); err != nil {
			t.Errorf("%s: %v", cmd, err)
		}
	}
}
