package mifaresim

import (
	"errors"
	"testing"

	"github.com/cardd/cardd/apdu"
)

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
