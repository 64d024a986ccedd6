// Package money converts between int64 fen (0.01 CNY), the only way cardd
// holds an amount, and the "12.34" text shown to people and typed by them.
// Amounts are never floats anywhere (DESIGN.md, money rule 1).
package money

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Format renders fen as yuan with exactly two decimals: 1234 → "12.34",
// -5 → "-0.05".
func Format(fen int64) string {
	sign := ""
	u := uint64(fen)
	if fen < 0 {
		sign = "-"
		u = -u // correct for math.MinInt64 too, as unsigned
	}
	return fmt.Sprintf("%s%d.%02d", sign, u/100, u%100)
}

// ErrBadAmount is wrapped by every Parse error.
var ErrBadAmount = errors.New("bad amount")

// maxYuan keeps yuan*100 inside int64 with room to spare.
const maxYuan = 1_000_000_000_000

// Parse reads "12.34", "12.3", "12" or "-0.05" into fen. It refuses more than
// two decimals (rounding money is a decision for a person, not a parser),
// exponents, spaces, and values beyond 10^12 yuan.
func Parse(s string) (int64, error) {
	in := s
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && (frac == "" || len(frac) > 2)) {
		return 0, fmt.Errorf("%w %q: want yuan with at most two decimals, like 12.34", ErrBadAmount, in)
	}
	for _, part := range []string{whole, frac} {
		for _, c := range part {
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("%w %q: want yuan with at most two decimals, like 12.34", ErrBadAmount, in)
			}
		}
	}
	y, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || y > maxYuan {
		return 0, fmt.Errorf("%w %q: too large", ErrBadAmount, in)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	f, _ := strconv.ParseInt(frac, 10, 64) // two digits, checked above
	fen := y*100 + f
	if neg {
		fen = -fen
	}
	return fen, nil
}
