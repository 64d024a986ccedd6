package printer

import (
	"bytes"
	"errors"
	"testing"
)

func TestStatusQuery(t *testing.T) {
	for k, want := range map[StatusKind][]byte{
		StatusPrinter: {0x10, 0x04, 0x01},
		StatusOffline: {0x10, 0x04, 0x02},
		StatusError:   {0x10, 0x04, 0x03},
		StatusPaper:   {0x10, 0x04, 0x04},
	} {
		if got := StatusQuery(k); !bytes.Equal(got, want) {
			t.Errorf("StatusQuery(%d) = % X, want % X", k, got, want)
		}
	}
}

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		k    StatusKind
		b    byte
		want Status
	}{
		{StatusPrinter, 0x12, Status{}},
		{StatusPrinter, 0x16, Status{DrawerPin3High: true}},
		{StatusPrinter, 0x1A, Status{Offline: true}},
		{StatusPrinter, 0x32, Status{WaitingOnline: true}},
		{StatusPrinter, 0x52, Status{FeedButton: true}},
		{StatusOffline, 0x12, Status{}},
		{StatusOffline, 0x16, Status{CoverOpen: true}},
		{StatusOffline, 0x1A, Status{FeedingPaper: true}},
		{StatusOffline, 0x32, Status{PaperEndStop: true}},
		{StatusOffline, 0x72, Status{PaperEndStop: true, Error: true}},
		{StatusError, 0x12, Status{}},
		{StatusError, 0x16, Status{RecoverableError: true}},
		{StatusError, 0x1A, Status{CutterError: true}},
		{StatusError, 0x32, Status{UnrecoverableError: true}},
		{StatusError, 0x52, Status{AutoRecoverableError: true}},
		{StatusPaper, 0x12, Status{}},
		{StatusPaper, 0x1E, Status{PaperNearEnd: true}},
		{StatusPaper, 0x16, Status{PaperNearEnd: true}}, // one sensor bit wired
		{StatusPaper, 0x72, Status{PaperOut: true}},
		{StatusPaper, 0x7E, Status{PaperNearEnd: true, PaperOut: true}},
	} {
		got, err := ParseStatus(tc.k, tc.b)
		if err != nil || got != tc.want {
			t.Errorf("ParseStatus(%d, %#02x) = %+v, %v; want %+v", tc.k, tc.b, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		k StatusKind
		b byte
	}{
		{StatusPrinter, 0x00}, // no fixed bits
		{StatusPrinter, 0x02}, // bit 4 missing
		{StatusPrinter, 0x10}, // bit 1 missing
		{StatusPrinter, 0x13}, // XOFF: bit 0 set
		{StatusPrinter, 0x11}, // XON
		{StatusPaper, 0x92},   // bit 7 set
		{StatusPaper, 0xFF},
		{0, 0x12},
		{5, 0x12},
	} {
		if got, err := ParseStatus(tc.k, tc.b); !errors.Is(err, ErrMalformedStatus) {
			t.Errorf("ParseStatus(%d, %#02x) = %+v, %v; want ErrMalformedStatus", tc.k, tc.b, got, err)
		}
	}
}

func TestStatusMerge(t *testing.T) {
	var s Status
	for _, a := range []struct {
		k StatusKind
		b byte
	}{{StatusPrinter, 0x1A}, {StatusOffline, 0x36}, {StatusError, 0x12}, {StatusPaper, 0x72}} {
		if err := s.Update(a.k, a.b); err != nil {
			t.Fatal(err)
		}
	}
	want := Status{Offline: true, CoverOpen: true, PaperEndStop: true, PaperOut: true}
	if s != want {
		t.Fatalf("merged %+v, want %+v", s, want)
	}
	if s.CanPrint() {
		t.Error("CanPrint with the cover open and no paper")
	}
	if err := s.Update(StatusPaper, 0x00); err == nil || s != want {
		t.Errorf("a malformed answer changed the status: %+v, %v", s, err)
	}
	if !(Status{PaperNearEnd: true}).CanPrint() {
		t.Error("a near-end roll should still print")
	}
}

func TestStatusAnswer(t *testing.T) {
	s := Status{Offline: true, CoverOpen: true, CutterError: true, PaperNearEnd: true}
	for k, want := range map[StatusKind]byte{StatusPrinter: 0x1A, StatusOffline: 0x16, StatusError: 0x1A, StatusPaper: 0x1E} {
		if got := s.Answer(k); got != want {
			t.Errorf("Answer(%d) = %#02x, want %#02x", k, got, want)
		}
	}
	if got := s.Answer(9); got != 0 {
		t.Errorf("Answer(9) = %#02x, want 0", got)
	}
}

// FuzzParseStatus checks that every byte either is refused for its fixed bits
// or parses into a status that answers the same byte back (up to the paired
// sensor bits, which Answer always sets together), and that a parse only
// touches its own kind's fields.
// Seed corpus: testdata/fuzz/FuzzParseStatus/.
func FuzzParseStatus(f *testing.F) {
	f.Fuzz(func(t *testing.T, k, b byte) {
		s, err := ParseStatus(StatusKind(k), b)
		valid := k >= 1 && k <= 4 && b&0x93 == 0x12
		if err != nil {
			if valid || !errors.Is(err, ErrMalformedStatus) {
				t.Fatalf("ParseStatus(%d, %#02x): %v", k, b, err)
			}
			if s != (Status{}) {
				t.Fatalf("error with a non-zero status %+v", s)
			}
			return
		}
		if !valid {
			t.Fatalf("ParseStatus(%d, %#02x) accepted a malformed answer: %+v", k, b, s)
		}
		a := s.Answer(StatusKind(k))
		if k == 4 {
			if a&0x93 != 0x12 || (a&0x0C != 0) != (b&0x0C != 0) || (a&0x60 != 0) != (b&0x60 != 0) {
				t.Fatalf("paper answer %#02x answered back as %#02x", b, a)
			}
		} else if a != b {
			t.Fatalf("ParseStatus(%d, %#02x) = %+v answers %#02x", k, b, s, a)
		}
		s2, err := ParseStatus(StatusKind(k), a)
		if err != nil || s2 != s {
			t.Fatalf("re-parse of %#02x: %+v, %v; want %+v", a, s2, err, s)
		}
		for other := StatusKind(1); other <= 4; other++ {
			if other != StatusKind(k) && s.Answer(other) != statusFixedBits {
				t.Fatalf("DLE EOT %d answer %#02x set fields of kind %d: %+v", k, b, other, s)
			}
		}
	})
}
