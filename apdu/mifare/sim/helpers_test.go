package mifaresim

import (
	"testing"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/mifare"
	"github.com/cardd/cardd/internal/apdutest"
)

// unhex is apdutest.Unhex: hex with spaces, as the spec writes it.
func unhex(t testing.TB, s string) []byte { return apdutest.Unhex(t, s) }

func block(t testing.TB, s string) [mifare.BlockSize]byte {
	t.Helper()
	var b [mifare.BlockSize]byte
	if n := copy(b[:], unhex(t, s)); n != mifare.BlockSize {
		t.Fatalf("%q is %d bytes, want 16", s, n)
	}
	return b
}

// Keys of the test wallet.
var (
	testKeyA = mifare.Key{0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5}
	testKeyB = mifare.Key{0xB0, 0xB1, 0xB2, 0xB3, 0xB4, 0xB5}
	testUID  = [4]byte{0x04, 0x3A, 0x5C, 0x21}
)

// testWallet is sector 1, value block 4, backup 5, ACS key slots.
func testWallet() mifare.Wallet {
	return mifare.Wallet{Sector: 1, ValueBlock: 4, BackupBlock: 5, KeyA: testKeyA, KeyB: testKeyB, Slots: mifare.KeySlotsACS}
}

// newTestCard issues a card holding balance in testWallet.
func newTestCard(t testing.TB, balance int64) *SimCard {
	t.Helper()
	f, err := NewCardFile(testUID, testWallet(), balance)
	if err != nil {
		t.Fatal(err)
	}
	return NewSimCard(f, "")
}

// counter counts the commands sent to a card, by INS.
type counter struct {
	t   apdu.Transmitter
	ins map[byte]int
	all int
}

func count(t apdu.Transmitter) *counter { return &counter{t: t, ins: map[byte]int{}} }

func (c *counter) Transmit(cmd []byte) ([]byte, error) {
	if len(cmd) > 1 {
		c.ins[cmd[1]]++
	}
	c.all++
	return c.t.Transmit(cmd)
}

// send transmits a raw command to a card and returns the response's status
// word and data, failing the test on a transport error.
func send(t testing.TB, c apdu.Transmitter, cmd string) (uint16, []byte) {
	t.Helper()
	raw, err := c.Transmit(unhex(t, cmd))
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	r, err := apdu.ParseResponse(raw)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return r.SW, r.Data
}

// mustSW sends cmd and checks the status word.
func mustSW(t testing.TB, c apdu.Transmitter, cmd string, want uint16) []byte {
	t.Helper()
	sw, data := send(t, c, cmd)
	if sw != want {
		t.Fatalf("%s: SW %04X, want %04X", cmd, sw, want)
	}
	return data
}

// chunks splits b into pieces, each a length byte and that many bytes (the
// last one whatever is left), so one fuzz input is a sequence of APDUs.
func chunks(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n := min(int(b[0]), len(b)-1)
		out = append(out, b[1:1+n])
		b = b[1+n:]
	}
	return out
}

// unchunk is the inverse of chunks, for seeds.
func unchunk(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, byte(len(p)))
		b = append(b, p...)
	}
	return b
}
