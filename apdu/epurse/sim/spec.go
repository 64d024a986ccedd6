package epursesim

import (
	"encoding/hex"
	"fmt"

	"github.com/cardd/cardd/apdu/epurse"
)

// The command bytes the card answers (spec "Commands") and the FCI tags it
// sends (spec "Selecting"). They are written here again rather than taken
// from the terminal, so that a wrong byte on one side is caught by the other.
const (
	claISO  = 0x00
	claPBOC = 0x80
	// claSecure is the class of a command that carries a MAC.
	claSecure = 0x84

	insSelect       = 0xA4
	insReadBinary   = 0xB0
	insReadRecord   = 0xB2
	insVerify       = 0x20
	insGetBalance   = 0x5C
	insInit         = 0x50
	insCreditLoad   = 0x52
	insDebit        = 0x54
	insGetProve     = 0x5A
	insGetChallenge = 0x84 // ISO 7816-4 GET CHALLENGE
	insAppBlock     = 0x1E // APPLICATION BLOCK (docs/epurse.md, "Blocking a card")
	insAppUnblock   = 0x18 // APPLICATION UNBLOCK
	p1InitLoad      = 0x00
	p1InitPurchase  = 0x01
	p2ReadRecordSFI = 0x04 // P2 = SFI<<3 | 4: read record P1 of that file

	tagFCI         = 0x6F
	tagDFName      = 0x84
	tagProprietary = 0xA5
	tagSFI         = 0x88
)

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// decodeHexInto fills dst from hex; "" leaves it zero.
func decodeHexInto(dst []byte, s, field string) error {
	if s == "" {
		return nil // left out: zeros
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(dst) {
		return fmt.Errorf("%w: %s must be %d bytes in hex", epurse.ErrBadArgument, field, len(dst))
	}
	copy(dst, b)
	return nil
}
