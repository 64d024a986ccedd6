package epursesim

import (
	"testing"

	"github.com/cardd/cardd/apdu/epurse"
)

// Campus numbers of 8 to 16 digits read back as issued: BCD, F-padded.
func TestCampusNumberLengths(t *testing.T) {
	m := epurse.MasterKeys{DLK: epurse.Key16{1}, DPK: epurse.Key16{2}, DTK: epurse.Key16{3}}
	for _, n := range []string{"31010001", "3101000123", "3101000000000001"} {
		f, err := NewCardFile(n, "", 0, epurse.Date{}, epurse.Date{}, m)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		got, nb, err := epurse.ProfileCampus.Number(f.Info.Bytes(), nil)
		if err != nil || got != n || nb != epurse.NumberBCD {
			t.Errorf("%s read back as %q (%s), %v", n, got, nb, err)
		}
	}
	for _, n := range []string{"3101000", "31010000000000012", "3104990600000000006"} {
		if _, err := NewCardFile(n, "", 0, epurse.Date{}, epurse.Date{}, m); err == nil {
			t.Errorf("%s issued as a campus card", n)
		}
	}
}
