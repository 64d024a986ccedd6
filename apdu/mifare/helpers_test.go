package mifare

import (
	"github.com/cardd/cardd/internal/apdutest"
	"testing"
)

// unhex is apdutest.Unhex: hex with spaces, as the spec writes it.
func unhex(t testing.TB, s string) []byte { return apdutest.Unhex(t, s) }

func block(t testing.TB, s string) [BlockSize]byte {
	t.Helper()
	var b [BlockSize]byte
	if n := copy(b[:], unhex(t, s)); n != BlockSize {
		t.Fatalf("%q is %d bytes, want 16", s, n)
	}
	return b
}

// Keys of the test wallet.
var (
	testKeyA = Key{0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5}
	testKeyB = Key{0xB0, 0xB1, 0xB2, 0xB3, 0xB4, 0xB5}
	testUID  = [4]byte{0x04, 0x3A, 0x5C, 0x21}
)

// testWallet is sector 1, value block 4, backup 5, ACS key slots.
func testWallet() Wallet {
	return Wallet{Sector: 1, ValueBlock: 4, BackupBlock: 5, KeyA: testKeyA, KeyB: testKeyB, Slots: KeySlotsACS}
}

// step and newScript are apdutest's scripted card.
type step = apdutest.Step

func newScript(t *testing.T, steps ...step) *apdutest.Script { return apdutest.NewScript(t, steps...) }
