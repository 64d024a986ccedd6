package epurse

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/cardd/cardd/apdu"
)

// AIDs of the e-purse application (spec "Selecting").
var (
	AIDCityCard = []byte{0xA0, 0x00, 0x00, 0x00, 0x03, 0x86, 0x98, 0x07, 0x01}
	AIDTUnion   = []byte{0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x05}
)

// swEndOfFile is the warning 6282: fewer bytes than Le were left to read.
const swEndOfFile uint16 = 0x6282

// FileIDADF is the file id of the EP/ED application DF, for cards that are
// selected by file id rather than by name.
const FileIDADF uint16 = 0x1001

// Class bytes: ISO inter-industry commands and the PBOC proprietary ones.
const (
	claISO  = 0x00
	claPBOC = 0x80
)

// Instruction bytes (spec "Commands").
const (
	insSelect       = 0xA4
	insReadBinary   = 0xB0
	insReadRecord   = 0xB2
	insVerify       = 0x20
	insGetBalance   = 0x5C
	insInit         = 0x50
	insCreditLoad   = 0x52
	insDebit        = 0x54
	insGetProve     = 0x5A
	p1InitLoad      = 0x00
	p1InitPurchase  = 0x01
	p2ReadRecordSFI = 0x04 // P2 = SFI<<3 | 4: read record P1 of that file
)

// Purse chooses the electronic deposit (ED) or electronic purse (EP)
// application; its value is the P2 of GET BALANCE and the INITs.
type Purse byte

// Purses.
const (
	PurseED Purse = 1
	PurseEP Purse = 2
)

// String is "ED" or "EP".
func (p Purse) String() string {
	switch p {
	case PurseED:
		return "ED"
	case PurseEP:
		return "EP"
	}
	return fmt.Sprintf("purse %#02x", byte(p))
}

// Check refuses a purse that is neither ED nor EP.
func (p Purse) Check() error {
	if p != PurseED && p != PurseEP {
		return fmt.Errorf("%w: %v is neither ED nor EP", ErrBadArgument, p)
	}
	return nil
}

// LoadType is the transaction type of a load into p: 01 ED, 02 EP.
func (p Purse) LoadType() TxType { return TxType(p) }

// PurchaseType is the transaction type of a purchase from p: 05 ED, 06 EP.
func (p Purse) PurchaseType() TxType { return TxType(p) + 4 }

// Select selects the e-purse application and returns its FCI (spec
// "Selecting"): each AID in turn (00 A4 04 00 Lc AID 00), the next one
// when the card answers 6A82 or 6A81, then the file id 1001 (00 A4 00 00 02
// 10 01 00). With no aids it tries AIDCityCard, then AIDTUnion.
//
// A card whose application is blocked answers 6283: Select returns an error
// for which errors.Is(err, ErrApplicationBlocked) and errors.Is(err,
// apdu.ErrFileInvalidated) hold, together with the
// FCI when the card sent one, so the caller can still name the card it
// refuses. A card that answers 9000 without data gives an empty FCI, and
// the caller reads EF 0x15.
func Select(t apdu.Transmitter, aids ...[]byte) (FCI, error) {
	if len(aids) == 0 {
		aids = [][]byte{AIDCityCard, AIDTUnion}
	}
	var misses []string
	for _, aid := range aids {
		if len(aid) == 0 || len(aid) > 16 {
			return FCI{}, fmt.Errorf("%w: an AID is 1 to 16 bytes, got %d", ErrBadArgument, len(aid))
		}
		fci, err := selectOne(t, apdu.Command{CLA: claISO, INS: insSelect, P1: 0x04, P2: 0x00, Data: aid, Ne: 256}, aid)
		if errors.Is(err, apdu.ErrFileNotFound) || errors.Is(err, apdu.ErrNotSupported) {
			misses = append(misses, fmt.Sprintf("%X: %v", aid, err))
			continue
		}
		if err != nil {
			return fci, fmt.Errorf("select AID %X: %w", aid, blockedErr(err))
		}
		return fci, nil
	}
	fid := binary.BigEndian.AppendUint16(nil, FileIDADF)
	fci, err := selectOne(t, apdu.Command{CLA: claISO, INS: insSelect, P1: 0x00, P2: 0x00, Data: fid, Ne: 256}, nil)
	if err != nil {
		// The file id's answer is the card's last word; the AIDs' are context.
		return fci, fmt.Errorf("select e-purse (AIDs %s; file %04X): %w", strings.Join(misses, ", "), FileIDADF, blockedErr(err))
	}
	return fci, nil
}

// SelectMF selects the master file, 00 A4 00 00 02 3F 00 (ISO 7816-4
// §11.2.2): some families keep the files that name the card there (Beijing's
// EF 4, Wuhan Tong's EF 0x0A), outside the e-purse application.
func SelectMF(t apdu.Transmitter) error {
	_, err := apdu.Transceive(t, apdu.Command{CLA: claISO, INS: insSelect, P1: 0x00, P2: 0x00, Data: []byte{0x3F, 0x00}, Ne: 256})
	if err != nil {
		return fmt.Errorf("select MF: %w", err)
	}
	return nil
}

// Reselect selects the e-purse application again after a visit to the MF:
// by name when it was selected by name, else by file id 1001.
func Reselect(t apdu.Transmitter, name []byte) error {
	c := apdu.Command{CLA: claISO, INS: insSelect, P1: 0x00, P2: 0x00, Data: binary.BigEndian.AppendUint16(nil, FileIDADF), Ne: 256}
	if name != nil {
		c.P1, c.Data = 0x04, name
	}
	if _, err := apdu.Transceive(t, c); err != nil {
		return fmt.Errorf("select the e-purse again: %w", err)
	}
	return nil
}

// selectOne sends one SELECT and parses what came back, even alongside an
// error status such as 6283.
func selectOne(t apdu.Transmitter, c apdu.Command, aid []byte) (FCI, error) {
	data, err := apdu.Transceive(t, c)
	if _, isSW := apdu.SW(err); err != nil && !isSW {
		return FCI{}, err // transport error: nothing was answered
	}
	var fci FCI
	if len(data) > 0 {
		var perr error
		if fci, perr = ParseFCI(data); perr != nil {
			if err != nil {
				return FCI{}, err // the status says more than broken data beside it
			}
			// 9000: the application is selected. An FCI of an issuer's own
			// making costs its copy of EF 0x15, not the tap.
			fci = FCI{Unreadable: perr}
		}
	}
	if fci.AID == nil && aid != nil {
		fci.AID = bytes.Clone(aid)
	}
	return fci, err
}

// GetBalance reads the balance of a purse in fen: 80 5C 00 P2 04 (spec
// "Commands", GET BALANCE), all 32 bits as our own cards keep it. Cards of
// other issuers use the top bit for something else: read them with
// GetBalanceWord and Profile.Balance.
func GetBalance(t apdu.Transmitter, p Purse) (int64, error) {
	w, err := GetBalanceWord(t, 0x00, p)
	return int64(w), err
}

// GetBalanceWord sends GET BALANCE with P1 p1 (80 5C P1 P2 04) and returns
// the 4-byte answer as it came. P1 00 is the purse itself; T-Union cards
// answer P1 01 with a second purse (Profile.SecondPurse).
func GetBalanceWord(t apdu.Transmitter, p1 byte, p Purse) (uint32, error) {
	if err := p.Check(); err != nil {
		return 0, err
	}
	data, err := apdu.Transceive(t, apdu.Command{CLA: claPBOC, INS: insGetBalance, P1: p1, P2: byte(p), Ne: 4})
	if err != nil {
		return 0, fmt.Errorf("get %v balance (P1 %02X): %w", p, p1, err)
	}
	if len(data) != 4 {
		return 0, wrongLength("GET BALANCE", len(data), 4)
	}
	return binary.BigEndian.Uint32(data), nil
}

// ReadIssuerInfo reads EF 0x15: 00 B0 95 00 1E (spec "Files"), strictly
// (ParseIssuerInfo).
func ReadIssuerInfo(t apdu.Transmitter) (IssuerInfo, error) {
	data, err := ReadBinarySFI(t, 0x15, IssuerInfoLen)
	if err != nil {
		return IssuerInfo{}, err
	}
	return ParseIssuerInfo(data)
}

// ReadBinarySFI reads n bytes from the start of the transparent file sfi of
// the selected application: 00 B0 (80|sfi) 00 n (ISO 7816-4 §11.2.3, READ
// BINARY with a short file id in P1). A card whose file is shorter answers
// 6Cxx and the apdu layer asks again with the length it gave.
func ReadBinarySFI(t apdu.Transmitter, sfi byte, n int) ([]byte, error) {
	if sfi < 1 || sfi > 30 {
		return nil, fmt.Errorf("%w: SFI %#02x is not in 1..30", ErrBadArgument, sfi)
	}
	data, err := apdu.Transceive(t, apdu.Command{CLA: claISO, INS: insReadBinary, P1: 0x80 | sfi, P2: 0x00, Ne: n})
	if sw, _ := apdu.SW(err); sw == swEndOfFile && len(data) > 0 {
		// 6282, "end of file reached before Le bytes" (ISO 7816-4 §5.1.3):
		// the file is shorter than asked, and data is all of it.
		return data, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read EF %#02x: %w", sfi, err)
	}
	return data, nil
}

// ReadHolder reads EF 0x16: 00 B0 96 00 37 (spec "Files"). Anonymous cards
// have no such file and answer 6A82 (apdu.ErrFileNotFound).
func ReadHolder(t apdu.Transmitter) (Holder, error) {
	data, err := apdu.Transceive(t, apdu.Command{CLA: claISO, INS: insReadBinary, P1: 0x80 | 0x16, P2: 0x00, Ne: HolderLen})
	if err != nil {
		return Holder{}, fmt.Errorf("read EF 0x16: %w", err)
	}
	return ParseHolder(data)
}

// MaxLogRecords is the number of records of a log file (spec "Files").
const MaxLogRecords = 10

// LogRecordError is returned by ReadLog when records of the log were read
// but do not parse (a wrong length, an impossible date): the records that
// parse, before and after them, are returned with it. It wraps the first
// record's parse error.
type LogRecordError struct {
	// SFI is the log file.
	SFI byte
	// Records are the numbers of the records that do not parse, 1 the
	// newest.
	Records []int
	// Err is the first one's parse error.
	Err error
}

// Error lists the records that do not parse and the first one's error.
func (e *LogRecordError) Error() string {
	return fmt.Sprintf("record(s) %v of log SFI %#02x do not parse: %v", e.Records, e.SFI, e.Err)
}

// Unwrap returns the first record's parse error.
func (e *LogRecordError) Unwrap() error { return e.Err }

// ReadLog reads up to max records, newest first, of the cyclic log file sfi:
// 00 B2 n (sfi<<3|4) 17 for n = 1..max (spec "Files", EF 0x18). It stops
// cleanly at 6A83 and at a zero-filled record, the two ways cards say "no
// more transactions". A record that does not parse is skipped and the
// reading goes on: the records that parse come with a *LogRecordError. Any
// other error is returned with the records read before it; a file the card
// does not have is apdu.ErrFileNotFound.
func ReadLog(t apdu.Transmitter, sfi byte, max int) ([]LogRecord, error) {
	return ReadLogFrom(t, sfi, 1, max)
}

// ReadLogFrom is ReadLog starting at record first (1 is the newest) and
// reading up to record max: for a caller that has read the newer records
// already and needs older ones.
func ReadLogFrom(t apdu.Transmitter, sfi byte, first, max int) ([]LogRecord, error) {
	if sfi < 1 || sfi > 30 {
		return nil, fmt.Errorf("%w: SFI %#02x is not in 1..30", ErrBadArgument, sfi)
	}
	if max < 1 || max > MaxLogRecords {
		return nil, fmt.Errorf("%w: %d records asked, a log holds 1 to %d", ErrBadArgument, max, MaxLogRecords)
	}
	if first < 1 || first > max {
		return nil, fmt.Errorf("%w: first record %d is not in 1..%d", ErrBadArgument, first, max)
	}
	var recs []LogRecord
	var bad *LogRecordError
	for n := first; n <= max; n++ {
		data, err := apdu.Transceive(t, apdu.Command{CLA: claISO, INS: insReadRecord, P1: byte(n), P2: sfi<<3 | p2ReadRecordSFI, Ne: LogRecordLen})
		if errors.Is(err, apdu.ErrRecordNotFound) {
			break
		}
		if err != nil {
			return recs, fmt.Errorf("read record %d of SFI %#02x: %w", n, sfi, err)
		}
		rec, empty, err := ParseLogRecord(data)
		if err != nil {
			// The card answered: one record it wrote wrongly says nothing
			// of the others.
			if bad == nil {
				bad = &LogRecordError{SFI: sfi, Err: err}
			}
			bad.Records = append(bad.Records, n)
			continue
		}
		if empty {
			break
		}
		recs = append(recs, rec)
	}
	if bad != nil {
		return recs, bad
	}
	return recs, nil
}

// VerifyPIN presents the cardholder PIN: 00 20 00 00 Lc PIN (spec
// "Commands", VERIFY PIN), the digits packed BCD and an odd count padded
// with F. A wrong PIN is apdu.ErrWrongPIN (63Cx: x tries left, see
// apdu.SW); a blocked one apdu.ErrAuthMethodBlocked. The PIN never appears
// in an error.
func VerifyPIN(t apdu.Transmitter, pin string) error {
	data, err := EncodePIN(pin)
	if err != nil {
		return err
	}
	resp, err := apdu.Transceive(t, apdu.Command{CLA: claISO, INS: insVerify, P1: 0x00, P2: 0x00, Data: data})
	if err != nil {
		return fmt.Errorf("verify PIN: %w", err)
	}
	if len(resp) != 0 {
		return wrongLength("VERIFY", len(resp), 0)
	}
	return nil
}

// EncodePIN packs a PIN of 4 to 12 digits as BCD, F-padded: the data of
// VERIFY, which a card compares with its own PIN encoded the same way.
func EncodePIN(pin string) ([]byte, error) {
	if len(pin) < 4 || len(pin) > 12 || !isDigits(pin) {
		return nil, fmt.Errorf("%w: a PIN is 4 to 12 digits", ErrBadArgument)
	}
	return encodeDigits(pin, (len(pin)+1)/2)
}
