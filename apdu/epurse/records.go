package epurse

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/cardd/cardd/apdu"
)

// Sizes of the card's files and records (spec "Files").
const (
	IssuerInfoLen = 30 // EF 0x15
	HolderLen     = 55 // EF 0x16
	LogRecordLen  = 23 // one record of EF 0x18
)

// IssuerInfo is EF 0x15, the public issuer information (spec "Files").
type IssuerInfo struct {
	// IssuerID is bytes 0-7; on a city card, issuer 0-1, city 2-3, industry 4-5.
	IssuerID [8]byte
	// AppType is byte 8: 01 ED, 02 EP, 03 both; a city card's enable flag.
	AppType byte
	// Version is byte 9, the application version.
	Version byte
	// AppSerial is bytes 10-19, the application serial from which the card
	// keys are diversified.
	AppSerial [10]byte
	// CardNumber is the number people know the card by. ParseIssuerInfo
	// fills it with the packed BCD digits of bytes 12-19, our own cards'
	// numbering; a card of another family is numbered by its Profile
	// (Profile.Number), and "" means the number is not known. Bytes writes
	// AppSerial, not this field: set the number with AppSerialFor or
	// Numbering.AppSerial.
	CardNumber string
	// Numbering is how CardNumber is formed from the card's files; "" is
	// NumberBCD. It is not on the card: card files keep it so that a
	// simulated card of another family names its number right.
	Numbering Numbering
	// StartDate and ExpiryDate are bytes 20-23 and 24-27.
	StartDate, ExpiryDate Date
	// CardType is bytes 28-29, big-endian.
	CardType uint16
}

// MinIssuerInfoLen is the shortest EF 0x15 that still holds the validity
// dates; cards of some issuers keep fewer or more bytes than 30.
const MinIssuerInfoLen = 28

// ParseIssuerInfo decodes the 30 bytes of EF 0x15 strictly: the card number
// must be BCD and the dates real. It is for our own cards (card files, the
// host's issue); a card in a reader is read with DecodeIssuerInfo.
func ParseIssuerInfo(b []byte) (IssuerInfo, error) {
	if len(b) != IssuerInfoLen {
		return IssuerInfo{}, fmt.Errorf("%w: EF 0x15 of %d bytes, want %d", apdu.ErrMalformed, len(b), IssuerInfoLen)
	}
	i, problems, err := DecodeIssuerInfo(b)
	if err != nil {
		return IssuerInfo{}, err
	}
	if len(problems) > 0 {
		return IssuerInfo{}, problems[0]
	}
	return i, nil
}

// DecodeIssuerInfo decodes EF 0x15 as cards of every issuer write it: 28
// bytes or more, of which it reads the first 30 (bytes 28-29, the card type,
// when present). Only a file too short to hold the dates is an error. A
// field it cannot interpret (a number that is not BCD, a date that does not
// exist) is left zero and described in problems: one odd field of a card
// from another issuer must not stop the balance, validity and log from
// being read.
func DecodeIssuerInfo(b []byte) (i IssuerInfo, problems []error, err error) {
	if len(b) < MinIssuerInfoLen {
		return i, nil, fmt.Errorf("%w: EF 0x15 of %d bytes, want at least %d", apdu.ErrMalformed, len(b), MinIssuerInfoLen)
	}
	copy(i.IssuerID[:], b[0:8])
	i.AppType, i.Version = b[8], b[9]
	copy(i.AppSerial[:], b[10:20])
	var perr error
	if i.CardNumber, perr = decodeDigits(b[12:20]); perr != nil {
		problems = append(problems, &FieldError{Field: FieldCardNumber, Err: perr})
	}
	if i.StartDate, perr = ParseDate(b[20:24]); perr != nil {
		problems = append(problems, &FieldError{Field: FieldStartDate, Err: perr})
	}
	if i.ExpiryDate, perr = ParseDate(b[24:28]); perr != nil {
		problems = append(problems, &FieldError{Field: FieldExpiryDate, Err: perr})
	}
	if len(b) >= 30 {
		i.CardType = binary.BigEndian.Uint16(b[28:30])
	}
	return i, problems, nil
}

// Fields of EF 0x15 DecodeIssuerInfo may fail to read.
const (
	FieldCardNumber = "card number"
	FieldStartDate  = "start date"
	FieldExpiryDate = "expiry date"
)

// FieldError is one field of EF 0x15 that did not read: a problem of
// DecodeIssuerInfo, which callers sort by Field rather than by its text.
type FieldError struct {
	Field string // FieldCardNumber, FieldStartDate or FieldExpiryDate
	Err   error
}

// Error names the field of EF 0x15 and why it did not read.
func (e *FieldError) Error() string { return "EF 0x15 " + e.Field + ": " + e.Err.Error() }

// Unwrap returns the field's own error, for errors.Is and errors.As.
func (e *FieldError) Unwrap() error { return e.Err }

// IsDate reports whether the field is one of the validity dates.
func (e *FieldError) IsDate() bool { return e.Field == FieldStartDate || e.Field == FieldExpiryDate }

// CityCode is bytes 2-3 of the issuer id, a city card's city code (CJ/T
// 166): 2000 is Shanghai.
func (i IssuerInfo) CityCode() uint16 { return binary.BigEndian.Uint16(i.IssuerID[2:4]) }

// Bytes encodes i as the 30 bytes of EF 0x15. A date that is neither zero
// nor real is written as zeros; ParseIssuerInfo never produces one.
func (i IssuerInfo) Bytes() []byte {
	b := make([]byte, 0, IssuerInfoLen)
	b = append(b, i.IssuerID[:]...)
	b = append(b, i.AppType, i.Version)
	b = append(b, i.AppSerial[:]...)
	start, _ := i.StartDate.BCD()
	expiry, _ := i.ExpiryDate.BCD()
	b = append(b, start[:]...)
	b = append(b, expiry[:]...)
	return binary.BigEndian.AppendUint16(b, i.CardType)
}

// ValidOn reports whether d lies within StartDate..ExpiryDate, both days
// included. A zero date leaves that end open: cards that do not set it mean
// "no limit". Cards keep no clock, so checking validity is the terminal's job.
func (i IssuerInfo) ValidOn(d Date) bool {
	if !i.StartDate.IsZero() && d.Before(i.StartDate) {
		return false
	}
	return i.ExpiryDate.IsZero() || !d.After(i.ExpiryDate)
}

// AppSerialFor builds a 10-byte application serial of our own numbering
// (NumberBCD) from a 2-byte prefix and a card number of up to 16 digits, packed BCD into bytes 2-9 (card
// bytes 12-19) and padded with F on the right, so that the card number is
// what ParseIssuerInfo reads back.
func AppSerialFor(prefix [2]byte, number string) ([10]byte, error) {
	var s [10]byte
	if number == "" {
		return s, fmt.Errorf("%w: empty card number", ErrBadArgument)
	}
	digits, err := encodeDigits(number, 8)
	if err != nil {
		return s, fmt.Errorf("card number: %w", err)
	}
	copy(s[:2], prefix[:])
	copy(s[2:], digits)
	return s, nil
}

// Holder is EF 0x16, the cardholder file (spec "Files").
type Holder struct {
	CardType  byte   `json:"card_type"`  // byte 0
	StaffFlag byte   `json:"staff_flag"` // byte 1
	Name      string `json:"name"`       // bytes 2-21, GBK on the card, UTF-8 here
	IDNumber  string `json:"id_number"`  // bytes 22-53, printable ASCII
	IDType    byte   `json:"id_type"`    // byte 54
}

// Field widths of EF 0x16.
const (
	holderNameLen = 20
	holderIDLen   = 32
)

// ParseHolder decodes the 55 bytes of EF 0x16. Trailing 00, 20 and FF bytes
// of the name and the id number are padding (cards differ in which they use);
// the name is decoded from GBK. A name that is not valid GBK, or an id number
// that is not printable ASCII, is an ErrBadRecord rather than a string full
// of replacement characters.
func ParseHolder(b []byte) (Holder, error) {
	if len(b) != HolderLen {
		return Holder{}, fmt.Errorf("%w: EF 0x16 of %d bytes, want %d", apdu.ErrMalformed, len(b), HolderLen)
	}
	h := Holder{CardType: b[0], StaffFlag: b[1], IDType: b[54]}
	name, err := decodeGBK(trimPadding(b[2:22]))
	if err != nil {
		return Holder{}, fmt.Errorf("EF 0x16 name: %w", err)
	}
	h.Name = name
	id := trimPadding(b[22:54])
	for _, c := range id {
		if c < 0x20 || c > 0x7E {
			return Holder{}, fmt.Errorf("%w: EF 0x16 id number holds byte %02X, not printable ASCII", ErrBadRecord, c)
		}
	}
	h.IDNumber = string(id)
	return h, nil
}

// Bytes encodes h as the 55 bytes of EF 0x16, the name in GBK, both strings
// padded with 00. It fails for a name GBK cannot write or that takes more
// than 20 bytes, and for an id number that is not up to 32 printable ASCII
// characters.
func (h Holder) Bytes() ([]byte, error) {
	name, err := encodeGBK(h.Name)
	if err != nil {
		return nil, fmt.Errorf("cardholder name: %w", err)
	}
	if len(name) > holderNameLen {
		return nil, fmt.Errorf("%w: cardholder name takes %d GBK bytes, the card has %d", ErrBadArgument, len(name), holderNameLen)
	}
	if len(h.IDNumber) > holderIDLen {
		return nil, fmt.Errorf("%w: id number of %d characters, the card has %d", ErrBadArgument, len(h.IDNumber), holderIDLen)
	}
	for i := 0; i < len(h.IDNumber); i++ {
		if c := h.IDNumber[i]; c < 0x20 || c > 0x7E {
			return nil, fmt.Errorf("%w: id number must be printable ASCII", ErrBadArgument)
		}
	}
	b := make([]byte, HolderLen)
	b[0], b[1], b[54] = h.CardType, h.StaffFlag, h.IDType
	copy(b[2:22], name)
	copy(b[22:54], h.IDNumber)
	return b, nil
}

// trimPadding drops trailing 00, 20 and FF bytes. None of them can be the
// trail byte of a GBK character (those are 40-7E and 80-FE), so trimming the
// raw bytes never cuts a character in half.
//
// It works on bytes, not runes: bytes.TrimRight with "\xFF" in its cutset
// would read both the cutset and GBK text as UTF-8 and eat every invalid byte.
func trimPadding(b []byte) []byte {
	n := len(b)
	for n > 0 && (b[n-1] == 0x00 || b[n-1] == 0x20 || b[n-1] == 0xFF) {
		n--
	}
	return b[:n]
}

func decodeGBK(b []byte) (string, error) {
	s, err := simplifiedchinese.GBK.NewDecoder().Bytes(b)
	// The decoder replaces bytes that are not GBK with U+FFFD rather than
	// failing; GBK cannot encode U+FFFD, so finding one means bad input.
	if err != nil || bytes.ContainsRune(s, utf8.RuneError) {
		return "", fmt.Errorf("%w: not valid GBK text", ErrBadRecord)
	}
	return string(s), nil
}

func encodeGBK(s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("%w: not UTF-8 text", ErrBadArgument)
	}
	b, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("%w: a character GBK cannot write", ErrBadArgument)
	}
	return b, nil
}
