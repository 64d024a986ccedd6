package main

import (
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/apdu/psam"
	psamsim "github.com/cardd/cardd/apdu/psam/sim"
	"github.com/cardd/cardd/host"
)

// TestCardIssuePurchaseKeys: --purchase-diversification, --purchase-key-index
// and --security-code give the card the purchase key a PSAM keyed two levels
// computes, the index it reads from EF 0x17 and a code it accepts; the
// default stays one level, index 1, no code. Bad values are usage errors.
func TestCardIssuePurchaseKeys(t *testing.T) { eachStore(t, testCardIssuePurchaseKeys) }

func testCardIssuePurchaseKeys(t *testing.T) {
	dir, _, plainFile := setup(t)
	masters, err := epurse.ReadMasterKeyFile(filepath.Join(dir, host.MastersFile))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := epursesim.LoadCardFile(plainFile)
	if err != nil {
		t.Fatal(err)
	}
	if plain.Keys.DPK != epurse.DiversifyKey(masters.DPK, plain.Info.AppSerial[:]) || plain.PurchaseKeyIndex > 1 || plain.SecurityCode != "" {
		t.Fatal("a default card is not one level, index 1, without a security code")
	}
	for i, div := range []psam.Diversification{psam.DiversifyIssuer, psam.DiversifyCity} {
		out := filepath.Join(t.TempDir(), "card.json")
		number := []string{"3101000000000011", "3101000000000012"}[i]
		wantCode(t, 0, "card", "issue", "--dir", dir, "--number", number, "--out", out, "--history", "2",
			"--purchase-diversification", div.String(), "--purchase-key-index", "3", "--security-code")
		f, err := epursesim.LoadCardFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if f.Keys.DPK != div.CardKey(masters.DPK, f.Info.IssuerID, f.Info.AppSerial[:]) || f.Keys.DPK == plain.Keys.DPK {
			t.Errorf("%s: the purchase key is not the two-level one", div)
		}
		code := psamsim.SimSecurityCode(f.Keys.DPK, f.Info.AppSerial[:])
		if f.PurchaseKeyIndex != 3 || f.SecurityCode != strings.ToUpper(hex.EncodeToString(code[:])) || len(f.Log) != 2 {
			t.Errorf("%s: key index %d, code %q, %d log records", div, f.PurchaseKeyIndex, f.SecurityCode, len(f.Log))
		}
		if f.Keys.DLK != epurse.DiversifyKey(masters.DLK, f.Info.AppSerial[:]) {
			t.Errorf("%s: the load key changed", div)
		}
	}
	for _, c := range [][]string{{"--purchase-diversification", "twice"}, {"--purchase-key-index", "0"}} {
		_, errOut := wantCode(t, 2, append([]string{"card", "issue", "--dir", dir, "--number", "3101000000000019", "--out", filepath.Join(t.TempDir(), "c.json")}, c...)...)
		if want := c[0] + " = "; !strings.Contains(errOut, want) {
			t.Errorf("%v: stderr %q", c, errOut)
		}
	}
}
