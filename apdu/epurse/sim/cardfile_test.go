package epursesim

import (
	"errors"
	"strings"
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

// TestValidateNamesEveryProblem: Validate reports every problem of a card
// file, in the order of the file's fields, with the texts people grep for.
func TestValidateNamesEveryProblem(t *testing.T) {
	f := newTestFile(t, 100)
	f.Info.CardNumber = "3101234567890002"
	f.Info.StartDate = epurse.Date{Year: 2029, Month: 2, Day: 30}
	f.Info.ExpiryDate = epurse.Date{Year: 2024, Month: 1, Day: 1}
	f.AID = "A000"
	f.SecurityCode = "0102"
	f.Holder.Name = strings.Repeat("名", 20)
	second := int64(-1)
	f.SecondPurse = &second
	f.BalanceTopBit = true
	f.MaxBalance = 50
	f.EPBalance, f.EDBalance = 0x80000000, -1
	f.Log = make([]epurse.LogRecord, epurse.MaxLogRecords+1)
	f.Log[0].Amount = -1
	f.LoadLog = []epurse.LogRecord{{}}
	f.PIN = "12a4"
	f.PINTriesLeft = 4
	f.Keys = epurse.CardKeys{}
	f.Proofs = []Proof{{Type: epurse.TxEPLoad}, {Type: epurse.TxEPLoad}}
	g := newTestFile(t, 100)
	g.Info.Numbering = "nope"
	g.LoadLogSFI = 0x18
	g.MaxBalance = -1
	for _, c := range []struct {
		f    *CardFile
		want string
	}{{f, `epurse: bad argument: info.card_number 3101234567890002 does not match app_serial, which holds 3101234567890001
epurse: bad argument: info: date 2029-02-30 does not exist
epurse: bad argument: info: expiry_date 2024-01-01 is before start_date 2029-02-30
epurse: bad argument: aid must be 5 to 16 bytes in hex
epurse: bad argument: security_code must be 9 bytes in hex
holder: epurse: bad argument: cardholder name takes 40 GBK bytes, the card has 20
epurse: bad argument: second_purse -1 is not in 0..2147483647
epurse: bad argument: balance_top_bit needs balances below 2147483647
epurse: bad argument: ep_balance 2147483648 is not in 0..50
epurse: bad argument: ed_balance -1 is not in 0..50
epurse: bad argument: log has 11 records, a log file holds 10
log record 1: epurse: amount out of range: amount -1 fen is not in 0..4294967295
epurse: bad argument: load_log has records but load_log_sfi is not set
epurse: bad argument: pin must be 4 to 12 digits
epurse: bad argument: pin_tries_left 4 is not in 0..3
epurse: bad argument: keys are missing
epurse: bad argument: proofs: two for type EP load, a card keeps the last one`}, {g, `epurse: bad argument: info.app_serial does not hold a card number numbered "nope": epurse: bad argument: cards numbered "nope" cannot be issued here
epurse: bad argument: max_balance -1 is not in 0..4294967295
epurse: bad argument: ep_balance 100 is not in 0..-1
epurse: bad argument: ed_balance 0 is not in 0..-1
epurse: bad argument: load_log_sfi 0x18 must be 1..30 and not 0x15, 0x16 or 0x18`}} {
		err := c.f.Validate()
		if !errors.Is(err, epurse.ErrBadArgument) || err.Error() != c.want {
			t.Errorf("Validate =\n%v\nwant\n%s", err, c.want)
		}
	}
}
