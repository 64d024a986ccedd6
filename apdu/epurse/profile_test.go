package epurse

import (
	"encoding/hex"
	"testing"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The numbers public readers give for each family (Metrodroid's China
// readers, docs/cards.md), from EF 0x15 images built to their layouts.
func TestProfileNumbers(t *testing.T) {
	// A T-Union EF 0x15 as published with tkerby/flipperzero-firmware-wPlugins'
	// t_union_master: serial 03104990600000000006 → 3104990600000000006.
	tunion := mustHex(t, "02313750FFFFFFFF0201031049906000000000062017010820991231")
	// Bytes 16-19 12 34 56 78: Shanghai reads them big-endian, City Union
	// (not BCD) and Shenzhen Tong little-endian.
	binary := mustHex(t, "0000200000000000020100000000ABCD12345678202001012030123100000000")
	for _, tc := range []struct {
		p      *Profile
		ef15   []byte
		want   string
		wantNb Numbering
	}{
		{ProfileTUnion, tunion, "3104990600000000006", NumberTUnion},
		{ProfileShanghai, binary, "305419896", NumberBE32},        // 0x12345678
		{ProfileCityUnion, binary, "2018915346", NumberLE32},      // 0x78563412, not BCD
		{ProfileShenzhen, binary, "20189153461", NumberLE32Check}, // digit sum 39: check 1
		{ProfileCampus, mustHex(t, "00010000000000000301000031010000876534562025090120290831"), "3101000087653456", NumberBCD},
		{ProfileGeneric, binary, "00000000ABCD12345678", NumberSerialHex},
	} {
		got, nb, err := tc.p.Number(tc.ef15, nil)
		if err != nil || got != tc.want || nb != tc.wantNb {
			t.Errorf("%s: %q (%s), %v; want %q (%s)", tc.p.Name, got, nb, err, tc.want, tc.wantNb)
		}
	}
	if got := PrintedNumber("20189153461", NumberLE32Check); got != "2018915346(1)" {
		t.Errorf("PrintedNumber = %q", got)
	}
	// The Shanghai card of integration/testdata/cards/shanghai-1.trace:
	// serial AC300CA7 = 2888830119, printed U01901838828 by the POS app
	// cited there.
	if got := PrintedNumber("2888830119", NumberBE32); got != "U01901838828" {
		t.Errorf("Shanghai PrintedNumber = %q", got)
	}
	// Beijing and Wuhan Tong keep the number in a file of their own.
	files := map[byte][]byte{0x04: mustHex(t, "1000751001234567"), 0x0A: mustHex(t, "0123456789FF")}
	if got, _, err := ProfileBeijing.Number(nil, files); err != nil || got != "1000751001234567" {
		t.Errorf("Beijing: %q, %v", got, err)
	}
	if got, _, err := ProfileWuhan.Number(nil, files); err != nil || got != "0123456789" {
		t.Errorf("Wuhan: %q, %v", got, err)
	}
	if _, _, err := ProfileWuhan.Number(nil, nil); err == nil {
		t.Error("Wuhan without EF 0x0A: no error")
	}
	// A T-Union serial that is not decimal falls back to the serial in hex,
	// flagged.
	odd := append([]byte(nil), tunion...)
	odd[19] = 0xAB
	if got, nb, err := ProfileTUnion.Number(odd, nil); err != nil || nb != NumberSerialHex || got != "031049906000000000AB" {
		t.Errorf("odd T-Union: %q (%s), %v", got, nb, err)
	}
}

func TestBalanceRules(t *testing.T) {
	for _, tc := range []struct {
		r    BalanceRule
		w    uint32
		want int64
	}{
		{BalanceLow31Signed, 0x8000164E, 5710}, // Shenzhen Tong, 57.10
		{BalanceLow31Signed, 0x0000164E, 5710},
		{BalanceLow31Signed, 0x7FFFFF9C, -100}, // a card 1.00 in overdraft
		{BalanceLow31, 0x8000164E, 5710},
		{BalanceAll32, 0x0000164E, 5710},
		{BalanceAll32, 0xFFFFFFFF, 0xFFFFFFFF},
	} {
		if got := tc.r.Decode(tc.w); got != tc.want {
			t.Errorf("%d.Decode(%08X) = %d, want %d", tc.r, tc.w, got, tc.want)
		}
	}
	second := int64(300)
	for _, tc := range []struct {
		main   int64
		second *int64
		want   int64
	}{{5000, &second, 4700}, {300, &second, 0}, {0, &second, -300}, {-100, &second, -400}, {0, nil, 0}} {
		if got := ProfileTUnion.Shown(tc.main, tc.second); got != tc.want || got > tc.main {
			t.Errorf("Shown(%d, %v) = %d, want %d", tc.main, tc.second, got, tc.want)
		}
	}
}

func TestIdentify(t *testing.T) {
	var own, shanghai, other IssuerInfo
	own.IssuerID, own.CardNumber = DefaultIssuerID, "3101000087653456"
	shanghai.IssuerID = [8]byte{0x00, 0x00, 0x20, 0x00}
	other.IssuerID = [8]byte{0x12, 0x34}
	long := make([]byte, 32)
	for _, tc := range []struct {
		name    []byte
		fci     []byte
		info    IssuerInfo
		want    *Profile
		comment string
	}{
		{AIDCityCard, nil, own, ProfileCampus, "our own card"},
		{nil, nil, own, ProfileCampus, "our own card by 1001"},
		{AIDCityCard, nil, shanghai, ProfileShanghai, "city 2000"},
		{AIDCityCard, nil, other, ProfileCityUnion, "another city"},
		{AIDTUnion, nil, other, ProfileTUnion, "T-Union"},
		{AIDShenzhenTong, nil, other, ProfileShenzhen, "PAY.SZT"},
		{nil, long, other, ProfileShenzhen, "1001 with a 32-byte 9F0C"},
		{AIDWuhanTong, nil, other, ProfileWuhan, "AP1.WHCTC"},
		{AIDBeijingPBOC, nil, other, ProfileBeijing, "PBOC"},
		{AIDSuzhou, nil, other, ProfileSuzhou, "SUXIN.DDF01"},
		{nil, nil, other, ProfileGeneric, "1001, nothing known"},
		{[]byte("OTHER"), nil, own, ProfileCampus, "our issuer id under a name of the operator's own (epurse.aids)"},
		{AIDShenzhenTong, nil, own, ProfileShenzhen, "our issuer id under another family's name"},
		{[]byte("OTHER"), nil, other, ProfileGeneric, "another issuer under a name no family uses"},
		{append(append([]byte{}, AIDTUnion...), 0x01), nil, other, ProfileTUnion, "T-Union's AID extended"},
		{[]byte("PBOCX"), nil, other, ProfileGeneric, "a short name is matched whole only"},
	} {
		if got := Identify(tc.name, tc.fci, tc.info, nil); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.comment, got.Name, tc.want.Name)
		}
	}
}

func TestTUnionAppSerial(t *testing.T) {
	s, err := NumberTUnion.AppSerial([2]byte{}, "3104990600000000006")
	if err != nil || hex.EncodeToString(s[:]) != "03104990600000000006" {
		t.Fatalf("AppSerial = %X, %v", s, err)
	}
	i := IssuerInfo{AppSerial: s, Numbering: NumberTUnion}
	if n, err := i.SerialNumber(); err != nil || n != "3104990600000000006" {
		t.Errorf("back: %q, %v", n, err)
	}
	for _, bad := range []string{"310499060000000000", "31049906000000000061", "310499060000000000X"} {
		if _, err := NumberTUnion.AppSerial([2]byte{}, bad); err == nil {
			t.Errorf("AppSerial(%q): no error", bad)
		}
	}
}

func TestProbes(t *testing.T) {
	ps := Probes()
	if len(ps) != 1 || ps[0] != ProfileBeijing {
		t.Fatalf("Probes() = %v", ps)
	}
	// EF 4 of the Beijing card in integration/testdata/cards/beijing-1.trace.
	if !ProfileBeijing.Probed(mustHex(t, "1000751132009883010200300000")) {
		t.Error("Beijing's EF 4 not recognised")
	}
	if ProfileBeijing.Probed(mustHex(t, "2000751132009883")) || ProfileBeijing.Probed([]byte{0x10}) {
		t.Error("another EF 4 taken for Beijing's")
	}
}
