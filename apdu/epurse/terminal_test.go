package epurse

import (
	"bytes"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/internal/apdutest"
)

// step and newScript are apdutest's scripted card.
type step = apdutest.Step

func newScript(t *testing.T, steps ...step) *apdutest.Script { return apdutest.NewScript(t, steps...) }

func fciHex(t *testing.T, aid []byte) string {
	info := unhex(t, ef15)
	inner := append(apdu.AppendTLV(nil, 0x84, aid), apdu.AppendTLV(nil, 0xA5, apdu.AppendTLV(nil, 0x9F0C, info))...)
	return hexOf(apdu.AppendTLV(nil, 0x6F, inner))
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func TestSelectDefaultAIDs(t *testing.T) {
	s := newScript(t,
		step{"00A4040009A00000000386980701 00", "6A82"},
		step{"00A4040008A000000632010105 00", fciHex(t, AIDTUnion) + "9000"},
	)
	f, err := Select(s)
	if err != nil || !bytes.Equal(f.AID, AIDTUnion) || f.Info == nil || f.Info.CardNumber != "3101234567890001" {
		t.Errorf("Select = %+v, %v", f, err)
	}
	s.Done()
}

func TestSelectFallsBackToFileID(t *testing.T) {
	s := newScript(t,
		step{"00A4040009A00000000386980701 00", "6A81"},
		step{"00A4040008A000000632010105 00", "6A82"},
		step{"00A4000002 1001 00", "9000"}, // some cards answer no FCI at all
	)
	f, err := Select(s)
	if err != nil || f.Info != nil || f.AID != nil {
		t.Errorf("Select = %+v, %v; want an empty FCI", f, err)
	}
	s.Done()

	s = newScript(t,
		step{"00A4040005A000000001 00", "6A82"},
		step{"00A4000002 1001 00", "6A82"},
	)
	if _, err := Select(s, unhex(t, "A000000001")); !errors.Is(err, apdu.ErrFileNotFound) {
		t.Errorf("no application: err = %v, want ErrFileNotFound", err)
	}
	s.Done()
}

func TestSelectBlocked(t *testing.T) {
	s := newScript(t, step{"00A4040009A00000000386980701 00", fciHex(t, AIDCityCard) + "6283"})
	f, err := Select(s, AIDCityCard)
	if !errors.Is(err, apdu.ErrFileInvalidated) || !errors.Is(err, ErrApplicationBlocked) {
		t.Errorf("err = %v, want ErrFileInvalidated and ErrApplicationBlocked", err)
	}
	if sw, ok := apdu.SW(err); !ok || sw != 0x6283 {
		t.Errorf("SW = %04X, %v", sw, ok)
	}
	if f.Info == nil || f.Info.CardNumber != "3101234567890001" {
		t.Errorf("the FCI that came with 6283 was dropped: %+v", f)
	}
	s.Done()
}

func TestSelectOtherErrorStops(t *testing.T) {
	s := newScript(t, step{"00A4040009A00000000386980701 00", "6E00"})
	if _, err := Select(s); !errors.Is(err, apdu.ErrCLANotSupported) {
		t.Errorf("err = %v", err)
	}
	s.Done()
}

func TestGetBalanceAPDU(t *testing.T) {
	s := newScript(t,
		step{"805C000204", "000186A0 9000"},
		step{"805C000104", "00000001 9000"},
		step{"805C000204", "0186A0 9000"},
		step{"805C000204", "6985"},
	)
	if v, err := GetBalance(s, PurseEP); err != nil || v != 100000 {
		t.Errorf("EP balance = %d, %v", v, err)
	}
	if v, err := GetBalance(s, PurseED); err != nil || v != 1 {
		t.Errorf("ED balance = %d, %v", v, err)
	}
	if _, err := GetBalance(s, PurseEP); !errors.Is(err, apdu.ErrMalformed) {
		t.Errorf("3-byte balance: err = %v, want ErrMalformed", err)
	}
	if _, err := GetBalance(s, PurseEP); !errors.Is(err, apdu.ErrConditionsOfUse) {
		t.Errorf("6985: err = %v", err)
	}
	if _, err := GetBalance(s, 3); !errors.Is(err, ErrBadArgument) {
		t.Errorf("purse 3: err = %v", err)
	}
	s.Done()
}

func TestReadFilesAPDU(t *testing.T) {
	s := newScript(t,
		step{"00B095001E", ef15 + "9000"},
		step{"00B0960037", hexOf(ef16(t, 0, 0)) + "9000"},
		step{"00B0960037", "6A82"},
		step{"00B095001E", "0001 9000"},
	)
	if i, err := ReadIssuerInfo(s); err != nil || i.CardNumber != "3101234567890001" {
		t.Errorf("ReadIssuerInfo = %+v, %v", i, err)
	}
	if h, err := ReadHolder(s); err != nil || h.Name != "张三" {
		t.Errorf("ReadHolder = %+v, %v", h, err)
	}
	if _, err := ReadHolder(s); !errors.Is(err, apdu.ErrFileNotFound) {
		t.Errorf("anonymous card: err = %v", err)
	}
	if _, err := ReadIssuerInfo(s); !errors.Is(err, apdu.ErrMalformed) {
		t.Errorf("short EF 0x15: err = %v", err)
	}
	s.Done()
}

func TestReadLogAPDU(t *testing.T) {
	rec2 := "0006 000000 00000100 02 001122334455 20120228 090000"
	s := newScript(t,
		step{"00B201C417", logRec + "9000"},
		step{"00B202C417", rec2 + "9000"},
		step{"00B203C417", "6A83"},
	)
	recs, err := ReadLog(s, 0x18, 10)
	if err != nil || len(recs) != 2 || recs[0].Counter != 7 || recs[1].Type != TxEPLoad {
		t.Errorf("ReadLog = %+v, %v", recs, err)
	}
	s.Done()

	// A card that answers unused slots with zeros.
	s = newScript(t,
		step{"00B201D417", logRec + "9000"},
		step{"00B202D417", strings.Repeat("00", 23) + "9000"},
	)
	if recs, err := ReadLog(s, 0x1A, 5); err != nil || len(recs) != 1 {
		t.Errorf("zero-filled end: %+v, %v", recs, err)
	}
	s.Done()

	// Only max records are asked for.
	s = newScript(t, step{"00B201C417", logRec + "9000"})
	if recs, err := ReadLog(s, 0x18, 1); err != nil || len(recs) != 1 {
		t.Errorf("max 1: %+v, %v", recs, err)
	}
	s.Done()

	// Reading on from record 2, up to record 3.
	s = newScript(t, step{"00B202C417", rec2 + "9000"}, step{"00B203C417", "6A83"})
	if recs, err := ReadLogFrom(s, 0x18, 2, 3); err != nil || len(recs) != 1 || recs[0].Counter != 6 {
		t.Errorf("from 2: %+v, %v", recs, err)
	}
	s.Done()
	for _, first := range []int{0, 4} {
		if _, err := ReadLogFrom(newScript(t), 0x18, first, 3); !errors.Is(err, ErrBadArgument) {
			t.Errorf("first %d of 3: err = %v", first, err)
		}
	}

	s = newScript(t, step{"00B201C417", "6A82"})
	if _, err := ReadLog(s, 0x18, 3); !errors.Is(err, apdu.ErrFileNotFound) {
		t.Errorf("no log file: err = %v", err)
	}
	s.Done()

	// Records that do not parse (too short, a 13th month) are skipped, and
	// the ones after them read: the error names the bad ones.
	s = newScript(t,
		step{"00B201C417", logRec + "9000"},
		step{"00B202C417", "00 9000"},
		step{"00B203C417", "0005 000000 00000100 06 001122334455 20121399 090000 9000"},
		step{"00B204C417", rec2 + "9000"},
		step{"00B205C417", "6A83"},
	)
	recs, err = ReadLog(s, 0x18, 10)
	var bad *LogRecordError
	if !errors.As(err, &bad) || !errors.Is(err, apdu.ErrMalformed) || !slices.Equal(bad.Records, []int{2, 3}) || bad.SFI != 0x18 {
		t.Errorf("bad records: err = %v, want records 2 and 3 of SFI 0x18 named", err)
	}
	if len(recs) != 2 || recs[0].Counter != 7 || recs[1].Counter != 6 {
		t.Errorf("bad records: %+v, want the two that parse", recs)
	}
	s.Done()

	for _, c := range []struct {
		sfi byte
		max int
	}{{0, 1}, {31, 1}, {0x18, 0}, {0x18, 11}} {
		if _, err := ReadLog(newScript(t), c.sfi, c.max); !errors.Is(err, ErrBadArgument) {
			t.Errorf("ReadLog(%#x, %d): err = %v", c.sfi, c.max, err)
		}
	}
}

func TestVerifyPINAPDU(t *testing.T) {
	s := newScript(t,
		step{"0020000003123456", "9000"},
		step{"002000000312345F", "63C2"},
		step{"00200000061234567890 12", "6983"},
	)
	if err := VerifyPIN(s, "123456"); err != nil {
		t.Error(err)
	}
	err := VerifyPIN(s, "12345")
	if !errors.Is(err, apdu.ErrWrongPIN) || strings.Contains(err.Error(), "12345") {
		t.Errorf("wrong PIN: err = %v", err)
	}
	if sw, _ := apdu.SW(err); sw != 0x63C2 {
		t.Errorf("SW = %04X", sw)
	}
	if err := VerifyPIN(s, "123456789012"); !errors.Is(err, apdu.ErrAuthMethodBlocked) {
		t.Errorf("blocked: err = %v", err)
	}
	for _, bad := range []string{"123", "1234567890123", "12a4", "", "１２３４"} {
		err := VerifyPIN(s, bad)
		if !errors.Is(err, ErrBadArgument) || (bad != "" && strings.Contains(err.Error(), bad)) {
			t.Errorf("VerifyPIN(%q) err = %v", bad, err)
		}
	}
	s.Done()
}

func TestLoadAPDUs(t *testing.T) {
	when := time.Date(2011, 12, 21, 21, 48, 22, 0, time.UTC)
	s := newScript(t,
		step{"805000010B 01 00001000 001122334455 10", "00000000 0000 01 00 11223344 2988AE5A 9000"},
		step{"805200000B 20111221 214822 3A845BF0 04", "01020304 9000"},
		step{"805200000B 20111221 214822 3A845BF0 04", "9302"},
		step{"805200000B 20111221 214822 3A845BF0 04", "0102 9000"},
	)
	li, err := InitLoad(s, PurseED, 1, 0x1000, b6(t, "001122334455"))
	want := LoadInit{KeyVersion: 1, Random: b4(t, "11223344"), MAC1: b4(t, "2988AE5A")}
	if err != nil || li != want {
		t.Errorf("InitLoad = %+v, %v; want %+v", li, err, want)
	}
	if tac, err := CreditLoad(s, when, b4(t, "3A845BF0")); err != nil || tac != b4(t, "01020304") {
		t.Errorf("CreditLoad = %X, %v", tac, err)
	}
	if _, err := CreditLoad(s, when, b4(t, "3A845BF0")); !errors.Is(err, apdu.ErrMACInvalid) {
		t.Errorf("9302: err = %v", err)
	}
	if _, err := CreditLoad(s, when, b4(t, "3A845BF0")); !errors.Is(err, apdu.ErrMalformed) {
		t.Errorf("short TAC: err = %v", err)
	}
	s.Done()

	for _, amount := range []int64{-1, MaxAmount + 1} {
		if _, err := InitLoad(newScript(t), PurseEP, 1, amount, [6]byte{}); !errors.Is(err, ErrBadAmount) {
			t.Errorf("InitLoad(%d): err = %v", amount, err)
		}
	}
	if _, err := CreditLoad(newScript(t), time.Time{}, [4]byte{}); err == nil {
		t.Error("CreditLoad with a zero time was sent")
	}
}

func TestPurchaseAPDUs(t *testing.T) {
	when := time.Date(2012, 2, 29, 13, 51, 0, 0, time.UTC)
	s := newScript(t,
		step{"805001020B 01 00001000 001122334455 0F", "00002000 0000 000100 01 00 11223344 9000"},
		step{"805401000F 00000001 20120229 135100 F15CAB75 08", "AABBCCDD 56988A13 9000"},
		step{"805001020B 01 00001000 001122334455 0F", "9401"},
		step{"805001020B 01 00001000 001122334455 0F", "00002000 0000 000100 01 00 112233 9000"},
	)
	pi, err := InitPurchase(s, PurseEP, 1, 0x1000, b6(t, "001122334455"))
	want := PurchaseInit{Balance: 0x2000, Overdraft: 0x100, KeyVersion: 1, Random: b4(t, "11223344")}
	if err != nil || pi != want {
		t.Errorf("InitPurchase = %+v, %v; want %+v", pi, err, want)
	}
	tac, mac2, err := DebitPurchase(s, 1, when, b4(t, "F15CAB75"))
	if err != nil || tac != b4(t, "AABBCCDD") || mac2 != b4(t, "56988A13") {
		t.Errorf("DebitPurchase = %X %X %v", tac, mac2, err)
	}
	if _, err := InitPurchase(s, PurseEP, 1, 0x1000, b6(t, "001122334455")); !errors.Is(err, apdu.ErrInsufficientBalance) {
		t.Errorf("9401: err = %v", err)
	}
	if _, err := InitPurchase(s, PurseEP, 1, 0x1000, b6(t, "001122334455")); !errors.Is(err, apdu.ErrMalformed) {
		t.Errorf("short answer: err = %v", err)
	}
	s.Done()
}

func TestGetTransactionProveAPDU(t *testing.T) {
	s := newScript(t,
		step{"805A00020200 08 08", "11223344 55667788 9000"},
		step{"805A0006020010 08", "9406"},
	)
	mac, tac, err := GetTransactionProve(s, TxEPLoad, 8)
	if err != nil || mac != b4(t, "11223344") || tac != b4(t, "55667788") {
		t.Errorf("GetTransactionProve = %X %X %v", mac, tac, err)
	}
	if _, _, err := GetTransactionProve(s, TxEPPurchase, 16); !errors.Is(err, apdu.ErrMACNotAvailable) {
		t.Errorf("9406: err = %v", err)
	}
	s.Done()
}

// A T=0 card or SAM answers 61xx and 6Cxx; the apdu layer hides both.
func TestT0Answers(t *testing.T) {
	s := newScript(t,
		step{"805C000204", "6104"},
		step{"00C0000004", "000186A0 9000"},
		step{"00B095001E", "6C1E"},
		step{"00B095001E", ef15 + "9000"},
	)
	if v, err := GetBalance(s, PurseEP); err != nil || v != 100000 {
		t.Errorf("61xx: %d, %v", v, err)
	}
	if _, err := ReadIssuerInfo(s); err != nil {
		t.Errorf("6Cxx: %v", err)
	}
	s.Done()
}

// A file shorter than Le answers its bytes with 6282 on some cards (ISO
// 7816-4): READ BINARY keeps them; other warnings and errors stay errors.
func TestReadBinarySFIShortFile(t *testing.T) {
	ef15 := bytes.Repeat([]byte{0x11}, 28)
	for _, tc := range []struct {
		answer []byte
		want   []byte
		ok     bool
	}{
		{append(bytes.Clone(ef15), 0x62, 0x82), ef15, true},
		{[]byte{0x62, 0x82}, nil, false},
		{[]byte{0x6A, 0x82}, nil, false},
		{append(bytes.Clone(ef15), 0x62, 0x83), nil, false},
	} {
		card := apdu.TransmitterFunc(func([]byte) ([]byte, error) { return bytes.Clone(tc.answer), nil })
		got, err := ReadBinarySFI(card, 0x15, IssuerInfoLen)
		if (err == nil) != tc.ok || !bytes.Equal(got, tc.want) {
			t.Errorf("answer % X: % X, %v", tc.answer, got, err)
		}
	}
}
