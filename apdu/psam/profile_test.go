package psam

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
)

// TestProfileAPDUs: the bytes of each command a profile adds, as the
// public terminals send them (docs/psam.md).
func TestProfileAPDUs(t *testing.T) {
	s := &script{answer: func(cmd []byte, n int) []byte {
		switch n {
		case 1:
			return unhex(t, "03 9000") // EF 17: key index 3
		case 2:
			return unhex(t, "01 A1A2A3A4A5A6A7A8 9000") // the card's code
		}
		return unhex(t, "9000")
	}}
	idx, err := ReadKeyIndex(s)
	if err != nil || idx != 3 {
		t.Fatalf("ReadKeyIndex = %d, %v", idx, err)
	}
	code, err := CardSecurityCode(s)
	if err != nil || code != [9]byte{0x01, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8} {
		t.Fatalf("CardSecurityCode = % X, %v", code, err)
	}
	if err := VerifySecurityCode(s, code); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"00B0970001",                   // PSAM_GET_17FILE
		"80CA000009",                   // to the card
		"80CA00000901A1A2A3A4A5A6A7A8", // to the PSAM: apduUserCode
	}
	if got := s.sentHex(); !reflect.DeepEqual(got, want) {
		t.Fatalf("sent %q, want %q", got, want)
	}
}

// TestProfileAPDUErrors: status words come back typed; a key index of 00
// or an answer of the wrong size is refused rather than used.
func TestProfileAPDUErrors(t *testing.T) {
	for _, tc := range []struct {
		answer string
		want   error
	}{{"6A82", apdu.ErrFileNotFound}, {"00 9000", apdu.ErrMalformed}, {"0301 9000", apdu.ErrMalformed}} {
		s := &script{answer: func([]byte, int) []byte { return unhex(t, tc.answer) }}
		if _, err := ReadKeyIndex(s); !errors.Is(err, tc.want) {
			t.Errorf("EF 17 answered %s: %v, want %v", tc.answer, err, tc.want)
		}
	}
	s := &script{answer: func([]byte, int) []byte { return unhex(t, "6D00") }}
	if _, err := CardSecurityCode(s); !errors.Is(err, apdu.ErrINSNotSupported) {
		t.Errorf("card without a code: %v", err)
	}
	s = &script{answer: func([]byte, int) []byte { return unhex(t, "6982") }}
	if err := VerifySecurityCode(s, [9]byte{}); !errors.Is(err, apdu.ErrSecurityStatus) {
		t.Errorf("code refused: %v", err)
	}
}

// TestInitSAMForPurchaseTwoLevels: Lc 24 carries random(4) ATC(2)
// amount(4) type(1) date-time(7) keyVer(1) algId(1), the card serial EF 15
// bytes 12-19, then the second factor: EF 15 bytes 0-7 (issuer layout) or
// the city code and FF 00 00 00 00 00 (city layout), as
// CardMethods.initSamForPurchase of the Pos80 transit POS builds it.
func TestInitSAMForPurchaseTwoLevels(t *testing.T) {
	issuer := [8]byte{0x02, 0x13, 0x31, 0x00, 0xFF, 0xFF, 0xFF, 0xFF}
	in := PurchaseMAC1Input{
		Card:   epurse.PurchaseInit{Random: [4]byte{0x11, 0x22, 0x33, 0x44}, OfflineCounter: 5, KeyVersion: 0x01, AlgID: 0x00},
		Amount: 100, Type: epurse.TxEPPurchase, When: time.Date(2026, 12, 3, 13, 45, 10, 0, time.Local),
		CardSerial: unhex(t, "3100 3101000000800001"),
	}
	for _, tc := range []struct {
		d    Diversification
		want string
	}{
		{DiversifyOnce, "807000001C" + "11223344" + "0005" + "00000064" + "06" + "20261203134510" + "01" + "00" + "3101000000800001"},
		{DiversifyIssuer, "8070000024" + "11223344" + "0005" + "00000064" + "06" + "20261203134510" + "01" + "00" + "3101000000800001" + "02133100FFFFFFFF"},
		{DiversifyCity, "8070000024" + "11223344" + "0005" + "00000064" + "06" + "20261203134510" + "01" + "00" + "3101000000800001" + "3100FF0000000000"},
	} {
		in.IssuerFactor = tc.d.SecondFactor(issuer)
		s := &script{answer: func([]byte, int) []byte { return unhex(t, "6108") }}
		_, _, _ = InitForPurchase(s, in)
		if got := s.sentHex(); len(got) == 0 || got[0] != tc.want {
			t.Errorf("%s: sent %q, want %s", tc.d, got, tc.want)
		}
	}
}

// TestInitSAMLengthRefused: 6700 to INIT SAM FOR PURCHASE is a
// diversification mismatch, and still the wrong-length status word.
func TestInitSAMLengthRefused(t *testing.T) {
	s := &script{answer: func([]byte, int) []byte { return unhex(t, "6700") }}
	_, _, err := InitForPurchase(s, PurchaseMAC1Input{Amount: 1, Type: epurse.TxEPPurchase, When: time.Now(), CardSerial: make([]byte, 10)})
	if !errors.Is(err, ErrDiversificationMismatch) || !errors.Is(err, apdu.ErrWrongLength) || !strings.Contains(err.Error(), "Lc 1C, one level") {
		t.Fatalf("err = %v", err)
	}
}

// TestCardKeyOrder: two levels diversify with the second factor first,
// then with the card serial; one level is the spec's Diversify.
func TestCardKeyOrder(t *testing.T) {
	issuer := [8]byte{0x02, 0x13, 0x31, 0x00, 0xFF, 0xFF, 0xFF, 0xFF}
	serial := unhex(t, "3100 3101000000800001")
	m := testMasters.DPK
	if got, want := DiversifyOnce.CardKey(m, issuer, serial), epurse.DiversifyKey(m, serial); got != want {
		t.Error("one level is not Diversify(master, serial)")
	}
	if got, want := DiversifyIssuer.CardKey(m, issuer, serial), epurse.DiversifyKey(epurse.DiversifyKey(m, issuer[:]), serial); got != want {
		t.Error("issuer layout is not Diversify(Diversify(master, issuer), serial)")
	}
	city := unhex(t, "3100 FF0000000000")
	if got, want := DiversifyCity.CardKey(m, issuer, serial), epurse.DiversifyKey(epurse.DiversifyKey(m, city), serial); got != want {
		t.Error("city layout is not Diversify(Diversify(master, city‖FF00…), serial)")
	}
}

func TestParseProfile(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "cardd key_index=1 diversification=one security_code=off"},
		{"cardd", "cardd key_index=1 diversification=one security_code=off"},
		{"tunion", "tunion apps=8011,BDA8C9E8B2BF key_index=psam diversification=issuer security_code=off"},
		{"cityunion key_index=3", "cityunion apps=1001 key_index=3 diversification=city security_code=on"},
		{"apps=DF01,1001 key_index=psam diversification=issuer security_code=on", "cardd apps=DF01,1001 key_index=psam diversification=issuer security_code=on"},
		{"  tunion   apps=a000000632010105  ", "tunion apps=A000000632010105 key_index=psam diversification=issuer security_code=off"},
	} {
		p, err := ParseProfile(tc.in)
		if err != nil || p.String() != tc.want {
			t.Errorf("ParseProfile(%q) = %s, %v; want %s", tc.in, p, err, tc.want)
		}
	}
	for _, in := range []string{"shanghai", "key_index=0", "key_index=256", "key_index=", "diversification=two", "security_code=yes",
		"apps=", "apps=0000", "apps=10", "apps=1001,zz", "color=red", "tunion tunion", "key_index=1 key_index=2", "=x"} {
		if _, err := ParseProfile(in); !errors.Is(err, ErrBadProfile) {
			t.Errorf("ParseProfile(%q) = %v, want ErrBadProfile", in, err)
		}
	}
	// The built-in table is not changed through a parsed profile.
	p, _ := ParseProfile("tunion")
	p.Apps[0].FileID = 0x1234
	if BuiltinProfiles["tunion"].Apps[0].FileID != FileIDTUnionApp {
		t.Fatal("ParseProfile shares the built-in profile's apps")
	}
}

// FuzzParseProfile: any text parses or is ErrBadProfile, never panics, and
// a parsed profile reads back the same from its String.
func FuzzParseProfile(f *testing.F) {
	for _, s := range []string{"", "tunion", "cityunion key_index=3", "apps=DF01,1001 key_index=psam diversification=city security_code=on"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseProfile(s)
		if err != nil {
			if !errors.Is(err, ErrBadProfile) {
				t.Fatalf("ParseProfile(%q): %v is not ErrBadProfile", s, err)
			}
			return
		}
		q, err := ParseProfile(p.String())
		if err != nil {
			t.Fatalf("ParseProfile(%q) = %s, which does not parse: %v", s, p, err)
		}
		if q.String() != p.String() {
			t.Fatalf("%q: %s reads back as %s", s, p, q)
		}
	})
}
