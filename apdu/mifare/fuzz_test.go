package mifare

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cardd/cardd/apdu"
)

// Seed corpora beyond the ones added below live in testdata/fuzz/<FuzzName>/.

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

func FuzzDecodeValue(f *testing.F) {
	v := EncodeValue(1000, 5)
	f.Add(v[:], byte(5))
	f.Add(v[:], byte(4))
	f.Add(make([]byte, 16), byte(0))
	f.Fuzz(func(t *testing.T, b []byte, addr byte) {
		v, err := DecodeValue(b, addr)
		if err != nil {
			if !errors.Is(err, ErrNotValueBlock) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		// Only the exact encoding decodes: no two blocks give one value.
		if enc := EncodeValue(v, addr); !bytes.Equal(enc[:], b) {
			t.Fatalf("DecodeValue(%X) = %d, which encodes as %X", b, v, enc)
		}
	})
}

// simSeeds are APDU sequences that reach deep into the simulated card:
// keys loaded, a sector authenticated, reads, writes and value operations.
func simSeeds(t testing.TB) [][]byte {
	h := func(s string) []byte { return unhex(t, s) }
	loadA, loadB := h("FF82000006 A0A1A2A3A4A5"), h("FF82000106 B0B1B2B3B4B5")
	authA, authB := h("FF86000005 01 00 04 60 00"), h("FF86000005 01 00 04 61 01")
	return [][]byte{
		append([]byte{0}, unchunk(h("FFCA000000"), h("FFB0000010"))...),
		append([]byte{0}, unchunk(loadA, authA, h("FFB0000410"), h("FFB0000710"), h("FFD7000405 02 00000001"), h("FFB1000404"))...),
		append([]byte{0x01}, unchunk(loadB, authB, h("FFD6000410 E8030000 17FCFFFF E8030000 04FB04FB"), h("FFD7000405 01 00000010"))...),
		append([]byte{0x06}, unchunk(loadB, authB, h("FFD7000402 03 05"), h("FFD6000710 A0A1A2A3A4A5 08778F 69 B0B1B2B3B4B5"), h("FFB0000710"))...),
		append([]byte{0}, unchunk(h("FF82000006 FFFFFFFFFFFF"), h("FF86000005 01 00 08 60 00"), h("FFD6000B10 FFFFFFFFFFFF 080780 69 FFFFFFFFFFFF"), h("FFB0000810"))...),
	}
}

// FuzzSimCardTransmit: the first byte arms a tear (bits 0-1 the write, 2-3
// the mode), the rest is a sequence of APDUs. Whatever they are, the card
// answers each with a response APDU or, at a tear, ErrTorn; block 0 never
// changes; and the card file stays valid.
func FuzzSimCardTransmit(f *testing.F) {
	for _, s := range simSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		card := newTestCard(t, 1000)
		block0 := card.File().Blocks[0]
		card.TearNextWriteAt(int(b[0]&3), TearMode((b[0]>>2&3)%3))
		for _, cmd := range chunks(b[1:]) {
			raw, err := card.Transmit(cmd)
			if err != nil {
				if !errors.Is(err, ErrTorn) {
					t.Fatalf("Transmit(%X): %v", cmd, err)
				}
				card.Reset()
				continue
			}
			if _, err := apdu.ParseResponse(raw); err != nil {
				t.Fatalf("Transmit(%X) = %X: %v", cmd, raw, err)
			}
		}
		f := card.File()
		if f.Blocks[0] != block0 {
			t.Fatalf("block 0 changed to %X", f.Blocks[0])
		}
		if err := f.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}

// replay answers each command with the next piece of a script, and fails
// once the script is spent, as a card that left.
type replay struct{ answers [][]byte }

var errSpent = errors.New("replay: no more answers")

func (r *replay) Transmit([]byte) ([]byte, error) {
	if len(r.answers) == 0 {
		return nil, errSpent
	}
	a := r.answers[0]
	r.answers = r.answers[1:]
	return a, nil
}

// walletSeeds are the answers of a card to a wallet's read, of one whose
// backup is stale, and of one whose value block is torn.
func walletSeeds(t testing.TB) [][]byte {
	ok := []byte{0x90, 0x00}
	with := func(b [BlockSize]byte) []byte { return append(b[:], 0x90, 0x00) }
	tr := with(block(t, "000000000000 08778F 69 000000000000"))
	return [][]byte{
		unchunk(ok, ok, tr, with(EncodeValue(1000, 4)), with(EncodeValue(1000, 5)), ok, ok),
		unchunk(ok, ok, tr, with(EncodeValue(700, 4)), with(EncodeValue(1000, 5)), ok, ok, ok),
		unchunk(ok, ok, tr, with(torn(EncodeValue(1000, 4), EncodeValue(700, 4))), with(EncodeValue(1000, 5)), ok, ok, ok),
		unchunk(ok, []byte{0x63, 0x00}),
		unchunk(ok, ok, []byte{0x61, 0x10}, tr),
	}
}

// FuzzWalletResponses feeds the terminal any answers: the wallet and the
// low-level commands must never panic, and what they accept must be a
// balance and a change that add up.
func FuzzWalletResponses(f *testing.F) {
	for i, s := range walletSeeds(f) {
		f.Add(s, int64(100*(i+1)))
	}
	f.Fuzz(func(t *testing.T, b []byte, amount int64) {
		w := testWallet()
		answers := chunks(b)
		r := func() *replay { return &replay{answers: answers} }

		if bal, _, err := w.Read(r()); err == nil && (bal < 0 || bal > MaxBalance) {
			t.Fatalf("Read accepted balance %d", bal)
		}
		if c, err := w.Decrement(r(), amount, nil); err == nil || errors.Is(err, ErrOutcomeUnknown) {
			if c.Old-c.New != amount || c.New < 0 || amount <= 0 {
				t.Fatalf("Decrement(%d) = %+v, %v", amount, c, err)
			}
		}
		if c, err := w.Increment(r(), amount, nil); err == nil || errors.Is(err, ErrOutcomeUnknown) {
			if c.New-c.Old != amount || c.New > MaxBalance || amount <= 0 {
				t.Fatalf("Increment(%d) = %+v, %v", amount, c, err)
			}
		}
		if uid, err := UID(r()); err == nil && len(uid) != 4 && len(uid) != 7 && len(uid) != 10 {
			t.Fatalf("UID accepted %X", uid)
		}
		_, _ = ReadBlock(r(), 4)
		_ = WriteBlock(r(), 4, EncodeValue(1, 4))
		_ = Authenticate(r(), 4, KeyTypeA, 0)
	})
}
