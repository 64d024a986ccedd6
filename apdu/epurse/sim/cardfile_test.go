package epursesim

import (
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/internal/jsonfile/jsonfiletest"
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

// TestLoadCardFileStrict: a card file is read strictly, its nested records
// too, and a refusal names the file.
func TestLoadCardFileStrict(t *testing.T) {
	f := newTestFile(t, 100)
	f.Log = []epurse.LogRecord{{Counter: 1, Amount: 100, Type: epurse.TxEPLoad, Time: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}}
	f.Proofs = []Proof{{Type: epurse.TxEPLoad, Counter: 1}}
	load := func(p string) error { _, err := LoadCardFile(p); return err }
	good := jsonfiletest.Good(t, f.Save, load)
	r := func(old, new string) []byte { return jsonfiletest.Replace(t, good, old, new) }
	cases := append(jsonfiletest.Refusals(t, good, "pin"),
		jsonfiletest.Case{Name: "unknown field in info", Body: r(`"info": {`, `"info": {"colour": "red",`), Want: `unknown field "colour"`},
		jsonfiletest.Case{Name: "unknown field in a log record", Body: r(`"log": [`+"\n    {", `"log": [{"colour": "red",`), Want: `unknown field "colour"`},
		jsonfiletest.Case{Name: "unknown field in a proof", Body: r(`"proofs": [`+"\n    {", `"proofs": [{"colour": "red",`), Want: `unknown field "colour"`},
		jsonfiletest.Case{Name: "invalid pin", Body: r(`"pin": "123456"`, `"pin": "12"`), Want: "pin must be 4 to 12 digits"},
	)
	jsonfiletest.Check(t, load, 0o600, cases...)
}
