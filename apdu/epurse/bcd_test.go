package epurse

import (
	"errors"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu"
)

func TestParseDate(t *testing.T) {
	for in, want := range map[string]Date{
		"20240229": {2024, time.February, 29},
		"19991231": {1999, time.December, 31},
		"00000000": {},
		"20991201": {2099, time.December, 1},
	} {
		got, err := ParseDate(unhex(t, in))
		if err != nil || got != want {
			t.Errorf("ParseDate(%s) = %v, %v; want %v", in, got, err, want)
		}
		b, err := got.BCD()
		if err != nil || string(b[:]) != string(unhex(t, in)) {
			t.Errorf("BCD of %v = %X, %v; want %s", got, b, err, in)
		}
	}
	for _, in := range []string{"20230229", "20241301", "20240100", "20240001", "2024013A", "F0240101", "20240431", "00000001"} {
		if _, err := ParseDate(unhex(t, in)); !errors.Is(err, ErrBadRecord) {
			t.Errorf("ParseDate(%s) err = %v, want ErrBadRecord", in, err)
		}
	}
	if _, err := ParseDate([]byte{0x20, 0x24, 0x01}); !errors.Is(err, apdu.ErrMalformed) {
		t.Errorf("3-byte date err = %v, want ErrMalformed", err)
	}
}

func TestDateMethods(t *testing.T) {
	a, b := Date{2024, 1, 31}, Date{2024, 2, 1}
	if !a.Before(b) || a.After(b) || b.Before(a) || !b.After(a) || a.Compare(a) != 0 {
		t.Error("Before/After/Compare disagree with the calendar")
	}
	if !(Date{}).Before(a) || !(Date{}).IsZero() || a.IsZero() {
		t.Error("the zero date must be zero and sort first")
	}
	if a.String() != "2024-01-31" || (Date{}).String() != "0000-00-00" {
		t.Errorf("String = %q, %q", a, Date{})
	}
	var d Date
	if err := d.UnmarshalText([]byte("2024-02-29")); err != nil || d != (Date{2024, 2, 29}) {
		t.Errorf("UnmarshalText = %v, %v", d, err)
	}
	if err := d.UnmarshalText([]byte("2023-02-29")); err == nil {
		t.Error("2023-02-29 accepted")
	}
	if got := DateOf(time.Date(2024, 3, 1, 0, 30, 0, 0, time.FixedZone("CST", 8*3600))); got != (Date{2024, 3, 1}) {
		t.Errorf("DateOf uses the time's own zone: got %v", got)
	}
}

func TestDateTime(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	when := time.Date(2012, 2, 29, 13, 51, 0, 0, cst)
	d, c, err := EncodeDateTime(when)
	if err != nil || d != [4]byte{0x20, 0x12, 0x02, 0x29} || c != [3]byte{0x13, 0x51, 0x00} {
		t.Fatalf("EncodeDateTime = %X %X %v: must be the wall clock in the time's own zone", d, c, err)
	}
	back, err := DecodeDateTime(d[:], c[:])
	if err != nil || back != time.Date(2012, 2, 29, 13, 51, 0, 0, time.UTC) {
		t.Errorf("DecodeDateTime = %v, %v: want the wall clock in UTC", back, err)
	}
	for _, bad := range [][2]string{{"20240101", "240000"}, {"20240101", "236000"}, {"20240101", "000060"}, {"00000000", "000001"}, {"20240101", "0A0000"}} {
		if _, err := DecodeDateTime(unhex(t, bad[0]), unhex(t, bad[1])); !errors.Is(err, ErrBadRecord) {
			t.Errorf("DecodeDateTime(%s %s) err = %v", bad[0], bad[1], err)
		}
	}
	if zt, err := DecodeDateTime(make([]byte, 4), make([]byte, 3)); err != nil || !zt.IsZero() {
		t.Errorf("all-zero date and time = %v, %v; want the zero time", zt, err)
	}
	if _, _, err := EncodeDateTime(time.Time{}); err == nil {
		t.Error("the zero time was encoded")
	}
	if _, _, err := EncodeDateTime(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Error("year 10000 was encoded")
	}
}

func TestDigits(t *testing.T) {
	for in, want := range map[string]string{
		"3101234567890001": "3101234567890001",
		"310123456789012F": "310123456789012",
		"31FFFFFFFFFFFFFF": "31",
	} {
		got, err := decodeDigits(unhex(t, in))
		if err != nil || got != want {
			t.Errorf("decodeDigits(%s) = %q, %v; want %q", in, got, err, want)
		}
		enc, err := encodeDigits(want, 8)
		if err != nil || string(enc) != string(unhex(t, in)) {
			t.Errorf("encodeDigits(%s) = %X, %v", want, enc, err)
		}
	}
	for _, in := range []string{"31F1234567890001", "3A01234567890001"} {
		if _, err := decodeDigits(unhex(t, in)); !errors.Is(err, ErrBadRecord) {
			t.Errorf("decodeDigits(%s) err = %v", in, err)
		}
	}
	if _, err := encodeDigits("12345678901234567", 8); err == nil {
		t.Error("17 digits fit 8 bytes")
	}
	if _, err := encodeDigits("12a4", 2); err == nil {
		t.Error("a letter was encoded as a digit")
	}
}
