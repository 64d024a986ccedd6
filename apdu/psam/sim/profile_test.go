package psamsim

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/cardd/cardd/apdu/psam"
)

// newProfileSAM is a PSAM in memory with the given settings.
func newProfileSAM(t *testing.T, change func(f *SAMFile)) *SimPSAM {
	t.Helper()
	f, err := NewSAMFile(testTerm, testMasters)
	if err != nil {
		t.Fatal(err)
	}
	change(f)
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	return NewSimPSAM(f, "")
}

// TestSimPSAMProfiles: the simulated PSAM plays each kind: its application
// at 8011, key index 3 in EF 0x17, two levels (refusing Lc 1C with 6700),
// and the security code (INIT without it 6985, a wrong one 6982).
func TestSimPSAMProfiles(t *testing.T) {
	sam := newProfileSAM(t, func(f *SAMFile) {
		f.AppFileID, f.KeyIndex, f.Diversification, f.SecurityCode = 0x8011, 3, psam.DiversifyIssuer, true
	})
	if _, sw := raw(t, sam, "00A4000002 1001"); sw != 0x6A82 {
		t.Fatalf("select 1001 on an 8011 PSAM: %04X", sw)
	}
	info, err := psam.OpenProfile(sam, psam.BuiltinProfiles["tunion"])
	if err != nil || info.KeyIndex != 3 || info.App.FileID != 0x8011 {
		t.Fatalf("OpenProfile = %+v, %v", info, err)
	}
	init := "11223344 0005 00000064 06 20261203134510 01 00 3101000000800001"
	if _, sw := raw(t, sam, "807000001C "+init); sw != 0x6700 {
		t.Fatalf("one level to a two-level PSAM: %04X, want 6700", sw)
	}
	if _, sw := raw(t, sam, "8070000024 "+init+" 02133100FFFFFFFF"); sw != 0x6985 {
		t.Fatalf("INIT without the security code: %04X, want 6985", sw)
	}
	if _, sw := raw(t, sam, "80CA000009 010203040506070809"); sw != 0x9000 {
		t.Fatalf("80 CA: %04X", sw)
	}
	if _, sw := raw(t, sam, "8070000024 "+init+" 02133100FFFFFFFF"); sw != 0x6982 {
		t.Fatalf("INIT after a wrong code: %04X, want 6982", sw)
	}
	if s := sam.File().Serial; s != 0 {
		t.Fatalf("refused INITs used serial %d", s)
	}
	key := psam.DiversifyIssuer.CardKey(testMasters.DPK, [8]byte{0x02, 0x13, 0x31, 0x00, 0xFF, 0xFF, 0xFF, 0xFF}, unhex(t, "3101000000800001"))
	code := SimSecurityCode(key, unhex(t, "3101000000800001"))
	if _, sw := raw(t, sam, "80CA000009 "+strings.ToUpper(hex.EncodeToString(code[:]))); sw != 0x9000 {
		t.Fatal("80 CA refused")
	}
	if _, sw := raw(t, sam, "8070000024 "+init+" 02133100FFFFFFFF"); sw != 0x6108 {
		t.Fatalf("INIT with the right code: %04X, want 6108", sw)
	}
	plain := newMemSAM(t)
	if _, sw := raw(t, plain, "00A4000002 1001"); sw&0xFF00 != 0x6100 {
		t.Fatalf("select 1001: %04X", sw)
	}
	if _, sw := raw(t, plain, "80CA000009 010203040506070809"); sw != 0x6D00 {
		t.Fatalf("80 CA to a PSAM without codes: %04X, want 6D00", sw)
	}
}
