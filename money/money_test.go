package money

import (
	"errors"
	"math"
	"testing"
)

func TestFormat(t *testing.T) {
	for fen, want := range map[int64]string{
		0: "0.00", 5: "0.05", 100: "1.00", 1234: "12.34", -5: "-0.05", -1234: "-12.34",
		math.MaxInt64: "92233720368547758.07", math.MinInt64: "-92233720368547758.08",
	} {
		if got := Format(fen); got != want {
			t.Errorf("Format(%d) = %q, want %q", fen, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "12": 1200, "12.3": 1230, "12.34": 1234, "0.05": 5, "-0.05": -5, "50.00": 5000,
		"1000000000000": 100000000000000,
	} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-", ".", "12.", ".5", "12.345", "1e3", " 12", "12 ", "+1", "1,00", "--1", "1.-1", "1000000000001", "99999999999999999999"} {
		if got, err := Parse(in); !errors.Is(err, ErrBadAmount) {
			t.Errorf("Parse(%q) = %d, %v; want ErrBadAmount", in, got, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, fen := range []int64{0, 1, 99, 100, 101, 123456789, -1, -100} {
		got, err := Parse(Format(fen))
		if err != nil || got != fen {
			t.Errorf("Parse(Format(%d)) = %d, %v", fen, got, err)
		}
	}
}
