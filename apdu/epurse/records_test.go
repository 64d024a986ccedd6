package epurse

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu"
)

// ef15 is a city card's EF 0x15: issuer 0001, city 3100, industry 0000,
// type 03, version 01, serial 0000 3101234567890001, 2024-01-01..2029-12-31,
// card type 0001.
const ef15 = "0001 3100 0000 0000 03 01 0000 3101234567890001 20240101 20291231 0001"

func TestParseIssuerInfo(t *testing.T) {
	b := unhex(t, ef15)
	i, err := ParseIssuerInfo(b)
	if err != nil {
		t.Fatal(err)
	}
	want := IssuerInfo{
		IssuerID:   [8]byte{0x00, 0x01, 0x31, 0x00},
		AppType:    0x03,
		Version:    0x01,
		AppSerial:  [10]byte{0x00, 0x00, 0x31, 0x01, 0x23, 0x45, 0x67, 0x89, 0x00, 0x01},
		CardNumber: "3101234567890001",
		StartDate:  Date{2024, 1, 1},
		ExpiryDate: Date{2029, 12, 31},
		CardType:   1,
	}
	if i != want {
		t.Errorf("ParseIssuerInfo =\n%+v, want\n%+v", i, want)
	}
	if !bytes.Equal(i.Bytes(), b) {
		t.Errorf("Bytes = %X, want %X", i.Bytes(), b)
	}
	if !i.ValidOn(Date{2024, 1, 1}) || !i.ValidOn(Date{2029, 12, 31}) || i.ValidOn(Date{2030, 1, 1}) || i.ValidOn(Date{2023, 12, 31}) {
		t.Error("ValidOn must include both end days and nothing outside")
	}
	if _, err := ParseIssuerInfo(b[:29]); !errors.Is(err, apdu.ErrMalformed) {
		t.Errorf("29 bytes: err = %v, want ErrMalformed", err)
	}
	bad := bytes.Clone(b)
	bad[20] = 0xAA // start date not BCD
	if _, err := ParseIssuerInfo(bad); !errors.Is(err, ErrBadRecord) {
		t.Errorf("bad date: err = %v, want ErrBadRecord", err)
	}
	bad = bytes.Clone(b)
	bad[15] = 0xC0 // card number not BCD
	if _, err := ParseIssuerInfo(bad); !errors.Is(err, ErrBadRecord) {
		t.Errorf("bad number: err = %v, want ErrBadRecord", err)
	}
}

func TestIssuerInfoJSON(t *testing.T) {
	i, err := ParseIssuerInfo(unhex(t, ef15))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(i)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"card_number":"3101234567890001","app_serial":"00003101234567890001","issuer_id":"0001310000000000","app_type":3,"version":1,"start_date":"2024-01-01","expiry_date":"2029-12-31","card_type":1}`
	if string(b) != want {
		t.Errorf("JSON =\n%s, want\n%s", b, want)
	}
	var back IssuerInfo
	if err := json.Unmarshal(b, &back); err != nil || back != i {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	// Without app_serial the serial is built from the number and the city.
	if err := json.Unmarshal([]byte(`{"card_number":"3101234567890001","issuer_id":"0001310000000000"}`), &back); err != nil {
		t.Fatal(err)
	}
	if back.AppSerial != [10]byte{0x31, 0x00, 0x31, 0x01, 0x23, 0x45, 0x67, 0x89, 0x00, 0x01} {
		t.Errorf("derived serial = %X", back.AppSerial)
	}
	if err := json.Unmarshal([]byte(`{"card_number":"3101234567890002","app_serial":"00003101234567890001"}`), &back); err == nil {
		t.Error("a number that disagrees with the serial was accepted")
	}
}

// ef16 holds 张三 in GBK (D5C5 C8FD) padded with 00, an id number padded
// with spaces, id type 00.
func ef16(t *testing.T, namePad, idPad byte) []byte {
	b := []byte{0x01, 0x00}
	name := append(unhex(t, "D5C5C8FD"), bytes.Repeat([]byte{namePad}, 16)...)
	id := append([]byte("11010519491231002X"), bytes.Repeat([]byte{idPad}, 14)...)
	b = append(b, name...)
	b = append(b, id...)
	return append(b, 0x00)
}

func TestParseHolder(t *testing.T) {
	want := Holder{CardType: 1, Name: "张三", IDNumber: "11010519491231002X"}
	for _, pad := range []byte{0x00, 0x20, 0xFF} {
		h, err := ParseHolder(ef16(t, pad, pad))
		if err != nil || h != want {
			t.Errorf("pad %02X: ParseHolder = %+v, %v; want %+v", pad, h, err, want)
		}
	}
	b, err := want.Bytes()
	if err != nil || !bytes.Equal(b, ef16(t, 0, 0)) {
		t.Errorf("Bytes = %X, %v", b, err)
	}
	if _, err := (Holder{Name: "欧阳诸葛司马上官慕容"}).Bytes(); err != nil {
		t.Errorf("10 characters (20 bytes) must fit: %v", err)
	}
	if _, err := (Holder{Name: "欧阳诸葛司马上官慕容张"}).Bytes(); !errors.Is(err, ErrBadArgument) {
		t.Errorf("11 characters: err = %v, want ErrBadArgument", err)
	}
	if _, err := (Holder{Name: "😀"}).Bytes(); !errors.Is(err, ErrBadArgument) {
		t.Errorf("emoji: err = %v, want ErrBadArgument", err)
	}
	bad := ef16(t, 0, 0)
	bad[2] = 0x81 // a lead byte followed by 0x00 is not GBK
	bad[3] = 0x00
	bad[4], bad[5] = 0x41, 0x42
	if _, err := ParseHolder(bad); !errors.Is(err, ErrBadRecord) {
		t.Errorf("bad GBK: err = %v, want ErrBadRecord", err)
	}
	bad = ef16(t, 0, 0)
	bad[22] = 0x07
	if _, err := ParseHolder(bad); !errors.Is(err, ErrBadRecord) {
		t.Errorf("control byte in id: err = %v, want ErrBadRecord", err)
	}
	if _, err := ParseHolder(make([]byte, 54)); !errors.Is(err, apdu.ErrMalformed) {
		t.Errorf("54 bytes: err = %v, want ErrMalformed", err)
	}
	if h, err := ParseHolder(bytes.Repeat([]byte{0xFF}, HolderLen)); err != nil || h.Name != "" || h.IDNumber != "" {
		t.Errorf("a blank FF-filled file = %+v, %v", h, err)
	}
}

const logRec = "0007 000000 00001000 06 001122334455 20120229 135100"

func TestParseLogRecord(t *testing.T) {
	b := unhex(t, logRec)
	r, empty, err := ParseLogRecord(b)
	want := LogRecord{Counter: 7, Amount: 0x1000, Type: TxEPPurchase, TerminalID: b6(t, "001122334455"),
		Time: time.Date(2012, 2, 29, 13, 51, 0, 0, time.UTC)}
	if err != nil || empty || r != want {
		t.Fatalf("ParseLogRecord = %+v, %v, %v; want %+v", r, empty, err, want)
	}
	if got, err := r.Bytes(); err != nil || !bytes.Equal(got, b) {
		t.Errorf("Bytes = %X, %v; want %X", got, err, b)
	}
	if _, empty, err := ParseLogRecord(make([]byte, 23)); !empty || err != nil {
		t.Errorf("zero-filled record: empty=%v err=%v; want empty", empty, err)
	}
	if _, _, err := ParseLogRecord(b[:22]); !errors.Is(err, apdu.ErrMalformed) {
		t.Errorf("22 bytes: err = %v", err)
	}
	bad := bytes.Clone(b)
	bad[18] = 0x13
	if _, _, err := ParseLogRecord(bad); !errors.Is(err, ErrBadRecord) {
		t.Errorf("month 13: err = %v", err)
	}
	// The first transaction of a new card has counter 0: not an empty record.
	first := bytes.Clone(b)
	first[0], first[1] = 0, 0
	if _, empty, err := ParseLogRecord(first); empty || err != nil {
		t.Errorf("counter 0: empty=%v err=%v", empty, err)
	}
	if _, err := (LogRecord{Amount: -1}).Bytes(); !errors.Is(err, ErrBadAmount) {
		t.Errorf("negative amount: err = %v", err)
	}
	if _, err := (LogRecord{Overdraft: 1 << 24}).Bytes(); !errors.Is(err, ErrBadAmount) {
		t.Errorf("overdraft of 4 bytes: err = %v", err)
	}
}

func TestLogRecordJSON(t *testing.T) {
	r, _, err := ParseLogRecord(unhex(t, logRec))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"counter":7,"amount":4096,"type":6,"terminal_id":"001122334455","time":"2012-02-29T13:51:00"}`
	if string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	var back LogRecord
	if err := json.Unmarshal(b, &back); err != nil || back != r {
		t.Errorf("round trip = %+v, %v", back, err)
	}
}

func TestTxTypeString(t *testing.T) {
	for tt, want := range map[TxType]string{TxEDLoad: "ED load", TxEPLoad: "EP load", TxEDPurchase: "ED purchase", TxEPPurchase: "EP purchase", TxComposite: "composite purchase", 0x42: "type 0x42"} {
		if got := tt.String(); got != want {
			t.Errorf("TxType(%#x) = %q, want %q", byte(tt), got, want)
		}
	}
}

func TestParseFCI(t *testing.T) {
	info := unhex(t, ef15)
	aid := AIDCityCard
	inner := append(apdu.AppendTLV(nil, 0x84, aid), apdu.AppendTLV(nil, 0xA5, apdu.AppendTLV(nil, 0x9F0C, info))...)
	f, err := ParseFCI(apdu.AppendTLV(nil, 0x6F, inner))
	if err != nil || !bytes.Equal(f.AID, aid) || f.Info == nil || f.Info.CardNumber != "3101234567890001" {
		t.Fatalf("ParseFCI = %+v, %v", f, err)
	}
	if again, err := ParseFCI(f.Bytes()); err != nil || !bytes.Equal(again.AID, aid) || *again.Info != *f.Info {
		t.Errorf("Bytes does not round-trip: %+v, %v", again, err)
	}

	// 9F0C nested in BF0C, as some cards do.
	nested := append(apdu.AppendTLV(nil, 0x84, aid), apdu.AppendTLV(nil, 0xA5, apdu.AppendTLV(nil, 0xBF0C, apdu.AppendTLV(nil, 0x9F0C, info)))...)
	if f, err := ParseFCI(apdu.AppendTLV(nil, 0x6F, nested)); err != nil || f.Info == nil {
		t.Errorf("nested 9F0C: %+v, %v", f, err)
	}
	// A 9F0C that is not 30 bytes is other issuer data: no Info, no error.
	other := append(apdu.AppendTLV(nil, 0x84, aid), apdu.AppendTLV(nil, 0xA5, apdu.AppendTLV(nil, 0x9F0C, []byte{1, 2, 3}))...)
	if f, err := ParseFCI(apdu.AppendTLV(nil, 0x6F, other)); err != nil || f.Info != nil {
		t.Errorf("short 9F0C: %+v, %v", f, err)
	}
	// No A5 at all.
	if f, err := ParseFCI(apdu.AppendTLV(nil, 0x6F, apdu.AppendTLV(nil, 0x84, aid))); err != nil || f.Info != nil || !bytes.Equal(f.AID, aid) {
		t.Errorf("no A5: %+v, %v", f, err)
	}
	// A 9F0C with a bad date costs the date, not the FCI: the date is a
	// problem beside the info, and the number and the other date stay.
	badInfo := bytes.Clone(info)
	badInfo[22] = 0x13
	bad := append(apdu.AppendTLV(nil, 0x84, aid), apdu.AppendTLV(nil, 0xA5, apdu.AppendTLV(nil, 0x9F0C, badInfo))...)
	f, err = ParseFCI(apdu.AppendTLV(nil, 0x6F, bad))
	if err != nil || f.Info == nil || len(f.InfoProblems) != 1 || !errors.Is(f.InfoProblems[0], ErrBadRecord) ||
		!f.Info.StartDate.IsZero() || f.Info.ExpiryDate.IsZero() || f.Info.CardNumber == "" || !bytes.Equal(f.InfoRaw, badInfo) {
		t.Errorf("bad 9F0C: %+v, %v", f, err)
	}
	// Shenzhen Tong's 32-byte copy is read, and kept whole.
	long := append(bytes.Clone(info), 0xAB, 0xCD)
	szt := apdu.AppendTLV(nil, 0x6F, append(apdu.AppendTLV(nil, 0x84, []byte("PAY.SZT")), apdu.AppendTLV(nil, 0xA5, apdu.AppendTLV(nil, 0x9F0C, long))...))
	if f, err := ParseFCI(szt); err != nil || f.Info == nil || len(f.InfoRaw) != 32 {
		t.Errorf("32-byte 9F0C: %+v, %v", f, err)
	}
	for name, b := range map[string][]byte{
		"no 6F":     apdu.AppendTLV(nil, 0x84, aid),
		"truncated": unhex(t, "6F 10 84 09 A0"),
		"empty":     nil,
	} {
		if _, err := ParseFCI(b); !errors.Is(err, apdu.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestAppSerialFor(t *testing.T) {
	s, err := AppSerialFor([2]byte{0x31, 0x00}, "3101234567890001")
	if err != nil || s != [10]byte{0x31, 0x00, 0x31, 0x01, 0x23, 0x45, 0x67, 0x89, 0x00, 0x01} {
		t.Errorf("AppSerialFor = %X, %v", s, err)
	}
	for _, bad := range []string{"", "31012345678900012", "310123456789000A"} {
		if _, err := AppSerialFor([2]byte{}, bad); err == nil || strings.Contains(err.Error(), bad) && bad != "" {
			t.Errorf("AppSerialFor(%q) err = %v", bad, err)
		}
	}
}
