package epurse

import (
	"errors"
	"testing"

	"github.com/cardd/cardd/apdu"
)

// The vectors were computed with openssl, not with this package: for a
// one-block input the PBOC MAC is 3DES-EDE2-CBC with IV challenge ‖ 00×4
// (openssl enc -des-ede-cbc -nopad); for two blocks, DES-CBC under the left
// half for the first, then 3DES with that block as IV for the last. The key
// is the DAMK of a published ED/EP walk-through (docs/epurse.md, sources).
func TestMaintenanceMACVectors(t *testing.T) {
	damk := key16(t, "07DBBE1E85DC562C94834B17143A14DC")
	ch := b4(t, "11223344")
	for _, c := range []struct {
		name string
		got  [4]byte
		want string
	}{
		{"block temporary", BlockMAC(damk, ch, BlockTemporary), "5BBF6023"},
		{"block permanent", BlockMAC(damk, ch, BlockPermanent), "63A5C3A9"},
		{"unblock", UnblockMAC(damk, ch), "4D70E44F"},
		{"two blocks", MaintenanceMAC(damk, ch, unhex(t, "0102030405060708090A")), "D4E3A568"},
	} {
		if c.got != b4(t, c.want) {
			t.Errorf("%s: MAC %X, want %s", c.name, c.got, c.want)
		}
	}
	// The challenge is the IV: another one gives another MAC.
	if BlockMAC(damk, b4(t, "11223345"), BlockTemporary) == b4(t, "5BBF6023") {
		t.Error("the MAC does not depend on the challenge")
	}
}

func TestGetChallengeAPDU(t *testing.T) {
	s := newScript(t, step{"0084000004", "A1B2C3D4 9000"})
	ch, err := GetChallenge(s)
	if err != nil || ch != b4(t, "A1B2C3D4") {
		t.Errorf("GetChallenge = %X, %v", ch, err)
	}
	s.Done()

	s = newScript(t, step{"0084000004", "A1B2C3 9000"})
	if _, err := GetChallenge(s); !errors.Is(err, apdu.ErrMalformed) {
		t.Errorf("a 3-byte challenge: err = %v, want ErrMalformed", err)
	}
	s.Done()
}

func TestApplicationBlockAPDU(t *testing.T) {
	s := newScript(t,
		step{"841E000004 5BBF6023", "9000"},
		step{"841E000104 63A5C3A9", "9302"},
		step{"841E000004 5BBF6023", "9303"},
		step{"8418000004 4D70E44F", "9000"},
	)
	if err := ApplicationBlock(s, BlockTemporary, b4(t, "5BBF6023")); err != nil {
		t.Errorf("block: %v", err)
	}
	if err := ApplicationBlock(s, BlockPermanent, b4(t, "63A5C3A9")); !errors.Is(err, apdu.ErrMACInvalid) {
		t.Errorf("a wrong MAC: err = %v, want ErrMACInvalid", err)
	}
	if err := ApplicationBlock(s, BlockTemporary, b4(t, "5BBF6023")); !errors.Is(err, ErrApplicationBlocked) || !errors.Is(err, apdu.ErrAppLocked) {
		t.Errorf("a locked application: err = %v, want ErrApplicationBlocked and ErrAppLocked", err)
	}
	if err := ApplicationUnblock(s, b4(t, "4D70E44F")); err != nil {
		t.Errorf("unblock: %v", err)
	}
	s.Done()
	if err := ApplicationBlock(newScript(t), BlockMode(2), [4]byte{}); !errors.Is(err, ErrBadArgument) {
		t.Errorf("mode 02: err = %v, want ErrBadArgument and nothing sent", err)
	}
}
