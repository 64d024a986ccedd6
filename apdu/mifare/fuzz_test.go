package mifare

import (
	"bytes"
	"errors"
	"testing"
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

// torn is a half-written block, as the simulated card leaves one: the first
// 8 bytes of next, the rest of old.
func torn(old, next [BlockSize]byte) [BlockSize]byte {
	var b [BlockSize]byte
	copy(b[:8], next[:8])
	copy(b[8:], old[8:])
	return b
}
