package epursesim

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
)

// The simulated card's own command handling, driven with the spec's test
// vectors ("Test vectors"): its INIT FOR LOAD answers the vector's MAC1, it
// accepts the vector's MAC2, and in a purchase it accepts the vector's MAC1
// and answers the vector's MAC2. The terminal functions send the bytes.
func vectorCard(t *testing.T, dlk, dpk string, random string) *SimCard {
	t.Helper()
	f, err := NewCardFile("3101000000000001", "", 0x2000, epurse.Date{Year: 2010, Month: 1, Day: 1}, epurse.Date{Year: 2099, Month: 12, Day: 31}, epurse.MasterKeys{
		DLK: key16(t, "0123456789ABCDEF0123456789ABCDEF"), DPK: key16(t, "0123456789ABCDEF0123456789ABCDEF"), DTK: key16(t, "0123456789ABCDEF0123456789ABCDEF")})
	if err != nil {
		t.Fatal(err)
	}
	f.Keys.DLK, f.Keys.DPK = key16(t, dlk), key16(t, dpk)
	c := NewSimCard(f, "")
	r, _ := hex.DecodeString(random)
	c.rand = bytes.NewReader(r)
	if _, err := epurse.Select(c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCardConformsLoadED(t *testing.T) {
	c := vectorCard(t, "11223344556677888877665544332211", "11223344556677888877665544332211", "11223344")
	c.f.EDBalance = 0
	init, err := epurse.InitLoad(c, epurse.PurseED, 1, 0x1000, b6(t, "001122334455"))
	if err != nil {
		t.Fatal(err)
	}
	if init.OnlineCounter != 0 || init.OldBalance != 0 || init.MAC1 != b4(t, "2988AE5A") {
		t.Fatalf("card's INIT FOR LOAD: counter %d balance %d MAC1 %X; want 0, 0, 2988AE5A", init.OnlineCounter, init.OldBalance, init.MAC1)
	}
	when := time.Date(2011, 12, 21, 21, 48, 22, 0, time.UTC)
	tac, err := epurse.CreditLoad(c, when, b4(t, "3A845BF0"))
	if err != nil {
		t.Fatalf("card refused the vector's MAC2: %v", err)
	}
	want, _ := epurse.LoadTAC(c.f.Keys.DTK, 0x1000, 0, 0x1000, epurse.TxEDLoad, b6(t, "001122334455"), when)
	if tac != want || c.f.EDBalance != 0x1000 || c.f.EDOnlineCounter != 1 {
		t.Errorf("after CREDIT: TAC %X (want %X), ED balance %d, counter %d", tac, want, c.f.EDBalance, c.f.EDOnlineCounter)
	}
}

func TestCardConformsLoadEP(t *testing.T) {
	c := vectorCard(t, "3F013F013F013F013F013F013F013F01", "3F013F013F013F013F013F013F013F01", "F9CABA91")
	c.f.EPBalance = 0
	init, err := epurse.InitLoad(c, epurse.PurseEP, 1, 0x1234, b6(t, "000000000001"))
	if err != nil {
		t.Fatal(err)
	}
	if init.MAC1 != b4(t, "6C394D64") {
		t.Fatalf("card's EP MAC1 %X, want 6C394D64", init.MAC1)
	}
}

func TestCardConformsPurchase(t *testing.T) {
	c := vectorCard(t, "11223344556677888877665544332211", "11223344556677888877665544332211", "11223344")
	init, err := epurse.InitPurchase(c, epurse.PurseEP, 1, 0x1000, b6(t, "001122334455"))
	if err != nil {
		t.Fatal(err)
	}
	if init.OfflineCounter != 0 {
		t.Fatalf("offline counter %d, want 0 for the vector", init.OfflineCounter)
	}
	when := time.Date(2012, 2, 29, 13, 51, 0, 0, time.UTC)
	_, mac2, err := epurse.DebitPurchase(c, 1, when, b4(t, "F15CAB75"))
	if err != nil {
		t.Fatalf("card refused the vector's purchase MAC1: %v", err)
	}
	if mac2 != b4(t, "56988A13") {
		t.Errorf("card's purchase MAC2 %X, want 56988A13", mac2)
	}
	if c.f.EPBalance != 0x2000-0x1000 {
		t.Errorf("EP balance %d after the purchase, want %d", c.f.EPBalance, 0x2000-0x1000)
	}
}
