package epurse

import (
	"fmt"
	"time"

	"github.com/cardd/cardd/apdu"
)

// Date is a calendar date as the card stores it: 4 bytes of BCD YYYYMMDD
// (spec "Conventions"). The zero Date is the all-zero field some cards use
// for "not set".
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate decodes a 4-byte BCD YYYYMMDD date. It rejects nibbles above 9
// and dates that do not exist (month 13, 30 February); 00000000 is accepted
// and gives the zero Date.
func ParseDate(b []byte) (Date, error) {
	if len(b) != 4 {
		return Date{}, fmt.Errorf("%w: date of %d bytes, want 4", apdu.ErrMalformed, len(b))
	}
	n, err := bcdNumber(b)
	if err != nil {
		return Date{}, fmt.Errorf("date %X: %w", b, err)
	}
	d := Date{Year: n / 10000, Month: time.Month(n / 100 % 100), Day: n % 100}
	if !d.IsZero() && !d.valid() {
		return Date{}, fmt.Errorf("%w: date %X does not exist", ErrBadRecord, b)
	}
	return d, nil
}

// DateOf returns the calendar date of t's wall clock in t's own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{Year: y, Month: m, Day: d}
}

// ParseDateString reads "2006-01-02"; "" and "0000-00-00" give the zero Date.
func ParseDateString(s string) (Date, error) {
	if s == "" || s == "0000-00-00" {
		return Date{}, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("%w: date %q: want YYYY-MM-DD", ErrBadRecord, s)
	}
	return DateOf(t), nil
}

// valid reports whether d is a real calendar date that fits 4 BCD bytes.
func (d Date) valid() bool {
	if d.Year < 0 || d.Year > 9999 || d.Month < time.January || d.Month > time.December || d.Day < 1 {
		return false
	}
	// time.Date normalises 30 February to 1 or 2 March; a real date survives.
	t := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
	return t.Day() == d.Day && t.Month() == d.Month
}

// IsZero reports whether d is the all-zero "not set" date.
func (d Date) IsZero() bool { return d == Date{} }

// String renders d as "2006-01-02"; the zero Date is "0000-00-00".
func (d Date) String() string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// Compare returns -1, 0 or +1 as d is before, equal to or after e. The zero
// Date sorts before every real date.
func (d Date) Compare(e Date) int {
	switch {
	case d.Year != e.Year:
		return cmpInt(d.Year, e.Year)
	case d.Month != e.Month:
		return cmpInt(int(d.Month), int(e.Month))
	default:
		return cmpInt(d.Day, e.Day)
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Before reports whether d is before e.
func (d Date) Before(e Date) bool { return d.Compare(e) < 0 }

// After reports whether d is after e.
func (d Date) After(e Date) bool { return d.Compare(e) > 0 }

// BCD encodes d as 4 bytes of BCD YYYYMMDD. It fails for a date that is
// neither zero nor a real date of years 0..9999.
func (d Date) BCD() ([4]byte, error) {
	var b [4]byte
	if d.IsZero() {
		return b, nil
	}
	if !d.valid() {
		return b, fmt.Errorf("%w: date %s cannot be written to a card", ErrBadRecord, d)
	}
	putBCD(b[:], d.Year*10000+int(d.Month)*100+d.Day)
	return b, nil
}

// MarshalText renders d as "2006-01-02", for card files and the local API.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads what MarshalText writes.
func (d *Date) UnmarshalText(b []byte) error {
	v, err := ParseDateString(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// EncodeDateTime encodes the wall clock of t, in t's own location, as the
// card's 4-byte BCD date and 3-byte BCD time. The zero time.Time is refused:
// it is always a caller's mistake, and a card would keep it for ever.
func EncodeDateTime(t time.Time) (date [4]byte, clock [3]byte, err error) {
	if t.IsZero() {
		return date, clock, fmt.Errorf("%w: zero transaction time", ErrBadArgument)
	}
	if date, err = DateOf(t).BCD(); err != nil {
		return date, clock, err
	}
	putBCD(clock[:], t.Hour()*10000+t.Minute()*100+t.Second())
	return date, clock, nil
}

// minTxYear is the earliest transaction year DecodeDateTime accepts.
const minTxYear = 1900

// DecodeDateTime decodes a 4-byte BCD date and a 3-byte BCD time into a
// time.Time in time.UTC carrying the terminal's wall clock (the card stores
// no zone; see the package documentation). An all-zero date and time give
// the zero time.Time.
func DecodeDateTime(date, clock []byte) (time.Time, error) {
	if len(clock) != 3 {
		return time.Time{}, fmt.Errorf("%w: time of %d bytes, want 3", apdu.ErrMalformed, len(clock))
	}
	d, err := ParseDate(date)
	if err != nil {
		return time.Time{}, err
	}
	n, err := bcdNumber(clock)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %X: %w", clock, err)
	}
	if d.IsZero() {
		if n != 0 {
			return time.Time{}, fmt.Errorf("%w: time %X on a zero date", ErrBadRecord, clock)
		}
		return time.Time{}, nil
	}
	// Year 1 would decode to Go's zero time, which means "no date" here, and
	// no card was used before there were e-purses: a year this early is a
	// corrupt record, not a transaction.
	if d.Year < minTxYear {
		return time.Time{}, fmt.Errorf("%w: transaction date %s is before %d", ErrBadRecord, d, minTxYear)
	}
	h, m, s := n/10000, n/100%100, n%100
	if h > 23 || m > 59 || s > 59 {
		return time.Time{}, fmt.Errorf("%w: time %X does not exist", ErrBadRecord, clock)
	}
	return time.Date(d.Year, d.Month, d.Day, h, m, s, 0, time.UTC), nil
}

// bcdNumber decodes packed BCD digits into an int; every nibble must be 0-9.
func bcdNumber(b []byte) (int, error) {
	n := 0
	for _, c := range b {
		hi, lo := c>>4, c&0x0F
		if hi > 9 || lo > 9 {
			return 0, fmt.Errorf("%w: %02X is not BCD", ErrBadRecord, c)
		}
		n = n*100 + int(hi)*10 + int(lo)
	}
	return n, nil
}

// putBCD writes n as packed BCD filling b, most significant digits first.
func putBCD(b []byte, n int) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte(n%10) | byte(n/10%10)<<4
		n /= 100
	}
}

// decodeDigits reads packed BCD digits as a string. Trailing F nibbles are
// padding (a number shorter than the field, as in EMV); an F before a digit
// or any other nibble above 9 is an error.
func decodeDigits(b []byte) (string, error) {
	out := make([]byte, 0, 2*len(b))
	pad := false
	for _, c := range b {
		for _, nib := range [2]byte{c >> 4, c & 0x0F} {
			switch {
			case nib == 0x0F:
				pad = true
			case nib > 9 || pad:
				return "", fmt.Errorf("%w: %X is not BCD digits", ErrBadRecord, b)
			default:
				out = append(out, '0'+nib)
			}
		}
	}
	return string(out), nil
}

// encodeDigits packs a string of decimal digits into n bytes of BCD, padding
// with F nibbles on the right.
func encodeDigits(s string, n int) ([]byte, error) {
	if len(s) > 2*n {
		return nil, fmt.Errorf("%w: %d digits do not fit %d bytes", ErrBadArgument, len(s), n)
	}
	if !isDigits(s) {
		return nil, fmt.Errorf("%w: not decimal digits", ErrBadArgument)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = 0xFF
	}
	for i := 0; i < len(s); i++ {
		d := s[i] - '0'
		if i%2 == 0 {
			b[i/2] = d<<4 | 0x0F
		} else {
			b[i/2] = b[i/2]&0xF0 | d
		}
	}
	return b, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
