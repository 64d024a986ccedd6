package psamsim

import (
	"encoding/hex"
	"strings"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/apdu/psam"
)

// CardPurchase is how an issuer personalises a card's purchase side for
// PSAMs of a profile: the purchase key's diversification, its key index,
// and whether the card carries a security code. The zero value is a card
// as epurse.NewCardFile makes it.
type CardPurchase struct {
	Diversification psam.Diversification
	KeyIndex        byte // 0 means 1
	SecurityCode    bool
}

// Apply rewrites f's purchase key from the issuer's purchase master key
// (two levels when Diversification says so), its purchase key index and
// its security code (SimSecurityCode of the new key). The other keys are
// left alone: loads and TACs do not involve the PSAM.
func (c CardPurchase) Apply(f *epursesim.CardFile, masterDPK epurse.Key16) {
	f.Keys.DPK = c.Diversification.CardKey(masterDPK, f.Info.IssuerID, f.Info.AppSerial[:])
	f.PurchaseKeyIndex = c.KeyIndex
	f.SecurityCode = ""
	if c.SecurityCode {
		code := SimSecurityCode(f.Keys.DPK, f.Info.AppSerial[:])
		f.SecurityCode = strings.ToUpper(hex.EncodeToString(code[:]))
	}
}
