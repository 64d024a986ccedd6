package tap

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
)

// fixedCard answers SELECT of any name with fci, READ BINARY of EF 0x15
// with ef15, GET BALANCE with 57.10 (top bit set as Shenzhen Tong sets it
// when top is true) and every other command as a card without that file.
func fixedCard(fci, ef15 []byte, top bool) apdu.Transmitter {
	return apdu.TransmitterFunc(func(cmd []byte) ([]byte, error) {
		ok := []byte{0x90, 0x00}
		switch {
		case len(cmd) < 4:
			return []byte{0x67, 0x00}, nil
		case cmd[1] == 0xA4 && cmd[2] == 0x04:
			return append(bytes.Clone(fci), ok...), nil
		case cmd[1] == 0xA4:
			return []byte{0x6A, 0x82}, nil
		case cmd[1] == 0xB0 && cmd[2] == 0x95:
			return append(bytes.Clone(ef15), ok...), nil
		case cmd[1] == 0x5C && cmd[2] == 0x00:
			w := []byte{0x00, 0x00, 0x16, 0x4E}
			if top {
				w[0] = 0x80
			}
			return append(w, ok...), nil
		case cmd[1] == 0xB2:
			return []byte{0x6A, 0x83}, nil
		}
		return []byte{0x6A, 0x82}, nil
	})
}

// No FCI and no EF 0x15 stops the read of the balance (issue 11): whatever
// a card's issuer put there, the balance shows, and ReadPurse never panics.
func FuzzReadPurseIdentity(f *testing.F) {
	own, _ := hex.DecodeString("00010000000000000301000031010000876534562025090120290831" + "0000")
	tunion, _ := hex.DecodeString("02313750FFFFFFFF0201031049906000000000062017010820991231")
	for _, aid := range [][]byte{epurse.AIDCityCard, epurse.AIDTUnion, epurse.AIDShenzhenTong} {
		for _, info := range [][]byte{own, tunion, append(bytes.Clone(own), 0xAB, 0xCD)} {
			fci := apdu.AppendTLV(nil, 0x6F, append(apdu.AppendTLV(nil, 0x84, aid),
				apdu.AppendTLV(nil, 0xA5, apdu.AppendTLV(nil, 0x9F0C, info))...))
			f.Add(fci, info, false)
		}
	}
	f.Add([]byte{}, tunion, true)
	f.Add([]byte{0x6F, 0x00}, []byte{}, true)
	f.Fuzz(func(t *testing.T, fci, ef15 []byte, top bool) {
		r, err := ReadPurse(fixedCard(fci, ef15, top), ReadOptions{}, nil)
		if err != nil {
			t.Fatalf("FCI %X, EF 0x15 %X: %v", fci, ef15, err)
		}
		if r.Profile == nil {
			t.Fatal("no profile")
		}
		want := int64(5710)
		if top && r.Profile.Balance == epurse.BalanceAll32 {
			want = 0x8000164E // our own cards keep all 32 bits
		}
		if r.Balance != want {
			t.Fatalf("profile %s: balance %d, want %d", r.Profile.Name, r.Balance, want)
		}
		if r.Transactable() == nil && r.Info.CardNumber == "" {
			t.Fatal("transactable without a number")
		}
	})
}
