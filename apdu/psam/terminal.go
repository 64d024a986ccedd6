package psam

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
)

// Class and instruction bytes of the commands cardd sends to a PSAM
// (docs/psam.md).
const (
	claISO  = 0x00
	claPBOC = 0x80

	insSelect         = 0xA4
	insReadBinary     = 0xB0
	insGetResponse    = 0xC0
	insInitSAMPurch   = 0x70 // INIT SAM FOR PURCHASE (MAC1 计算)
	insCreditSAMPurch = 0x72 // CREDIT SAM FOR PURCHASE (MAC2 校验)
	insSecurityCode   = 0xCA // the card's security code (安全认证码), to the card and to the PSAM
)

// Files of the PSAM.
const (
	// FileIDMF is the master file.
	FileIDMF uint16 = 0x3F00
	// FileIDApp is the usual file id of the PSAM's purchase application DF.
	FileIDApp uint16 = 0x1001
	// SFITerminalID is the short file id of the EF, in the MF, that holds
	// the 6-byte terminal id.
	SFITerminalID = 0x16
	// SFIKeyIndex is the short file id of the EF, in the purchase
	// application, whose first byte is the purchase key index.
	SFIKeyIndex = 0x17
)

// SecurityCodeLen is the length of a card's security code.
const SecurityCodeLen = 9

// Lengths of the INIT SAM FOR PURCHASE fields.
const (
	// FactorLen is the length of one diversification factor.
	FactorLen = 8
	// initFixedLen is what precedes the factors: random(4) offlineCtr(2)
	// amount(4) type(1) date(4) time(3) keyVersion(1) algId(1).
	initFixedLen = 20
	// initAnswerLen is terminal transaction serial(4) MAC1(4).
	initAnswerLen = 8
)

// pseName is the DF name of the MF of PSAMs that are selected by name.
var pseName = []byte("1PAY.SYS.DDF01")

// App names the PSAM's purchase application DF: by AID when AID is set,
// otherwise by file id.
type App struct {
	FileID uint16 // 00 A4 00 00 02 <id>
	AID    []byte // 00 A4 04 00 <n> <AID>
}

// String is "file 1001" or "AID A000…".
func (a App) String() string {
	if len(a.AID) > 0 {
		return fmt.Sprintf("AID %X", a.AID)
	}
	return fmt.Sprintf("file %04X", a.FileID)
}

func (a App) command() apdu.Command {
	if len(a.AID) > 0 {
		return apdu.Command{CLA: claISO, INS: insSelect, P1: 0x04, P2: 0x00, Data: a.AID}
	}
	return apdu.Command{CLA: claISO, INS: insSelect, P1: 0x00, P2: 0x00, Data: binary.BigEndian.AppendUint16(nil, a.FileID)}
}

// DefaultApps is what SelectApp tries when it is given no application: the
// file id 1001 that most PBOC PSAMs give their purchase DF. PSAMs of other
// issuers use other ids (DF01, DF03, 3F01) or are selected by AID; those
// come from configuration.
var DefaultApps = []App{{FileID: FileIDApp}}

// Info is what Open learns from the PSAM.
type Info struct {
	// TerminalID is EF 0x16 of the MF: the terminal id that the PSAM puts
	// into every MAC1, so the one the terminal must send to the card in
	// INITIALIZE FOR PURCHASE.
	TerminalID [6]byte
	// App is the purchase application that answered the SELECT.
	App App
	// KeyIndex is the purchase key index for INITIALIZE FOR PURCHASE, set
	// by OpenProfile (zero after Open).
	KeyIndex byte
}

// Open readies a PSAM after power-up for purchases: SelectMF, TerminalID
// (EF 0x16 lives in the MF, so it is read before the application is
// entered), then SelectApp with apps (DefaultApps when none). The PSAM is
// left in its purchase application, where InitForPurchase runs.
func Open(t apdu.Transmitter, apps ...App) (Info, error) {
	if err := SelectMF(t); err != nil {
		return Info{}, err
	}
	id, err := TerminalID(t)
	if err != nil {
		return Info{}, err
	}
	app, err := SelectApp(t, apps...)
	if err != nil {
		return Info{}, err
	}
	return Info{TerminalID: id, App: app}, nil
}

// SelectMF selects the master file: 00 A4 00 00 02 3F 00, and when the PSAM
// answers 6A82, 6A86 or 6A81 (COSes that select their MF by name only),
// 00 A4 04 00 0E "1PAY.SYS.DDF01". The FCI is not needed and not parsed.
func SelectMF(t apdu.Transmitter) error {
	byID := apdu.Command{CLA: claISO, INS: insSelect, P1: 0x00, P2: 0x00, Data: binary.BigEndian.AppendUint16(nil, FileIDMF)}
	_, err := apdu.Transceive(t, byID)
	if err == nil {
		return nil
	}
	if !notHere(err) && !errors.Is(err, apdu.ErrWrongP1P2) {
		return fmt.Errorf("PSAM select MF: %w", err)
	}
	byName := apdu.Command{CLA: claISO, INS: insSelect, P1: 0x04, P2: 0x00, Data: pseName}
	if _, err2 := apdu.Transceive(t, byName); err2 != nil {
		return fmt.Errorf("PSAM select MF (3F00: %v; by name %s): %w", err, pseName, err2)
	}
	return nil
}

// notHere reports a SELECT answer that means "try the next name".
func notHere(err error) bool {
	return errors.Is(err, apdu.ErrFileNotFound) || errors.Is(err, apdu.ErrNotSupported)
}

// SelectApp selects the PSAM's purchase application: each of apps in turn
// (DefaultApps when none is given), the next one when the PSAM answers 6A82
// or 6A81. It returns the one selected.
func SelectApp(t apdu.Transmitter, apps ...App) (App, error) {
	if len(apps) == 0 {
		apps = DefaultApps
	}
	var misses []string
	var last error
	for _, a := range apps {
		if n := len(a.AID); n > 16 || (n == 0 && a.FileID == 0) {
			return App{}, fmt.Errorf("%w: PSAM application %v: an AID is 1 to 16 bytes, a file id is not 0000", epurse.ErrBadArgument, a)
		}
		_, err := apdu.Transceive(t, a.command())
		if err == nil {
			return a, nil
		}
		if !notHere(err) {
			return App{}, fmt.Errorf("PSAM select %v: %w", a, err)
		}
		misses = append(misses, a.String())
		last = err
	}
	// The last answer is wrapped, so errors.Is(err, apdu.ErrFileNotFound)
	// tells a PSAM without the application from a broken one.
	return App{}, fmt.Errorf("PSAM select purchase application (tried %s): %w", strings.Join(misses, ", "), last)
}

// TerminalID reads the 6-byte terminal id from EF 0x16: 00 B0 96 00 06.
// The EF lives in the MF, which must be the current DF (SelectMF; Open does
// this in the right order).
func TerminalID(t apdu.Transmitter) ([6]byte, error) {
	var id [6]byte
	c := apdu.Command{CLA: claISO, INS: insReadBinary, P1: 0x80 | SFITerminalID, P2: 0x00, Ne: len(id)}
	data, err := apdu.Transceive(t, c)
	if err != nil {
		return id, fmt.Errorf("PSAM read terminal id (EF 16): %w", err)
	}
	if len(data) != len(id) {
		return id, wrongLength("READ BINARY EF 16", len(data), len(id))
	}
	copy(id[:], data)
	return id, nil
}

// PurchaseMAC1Input is what INIT SAM FOR PURCHASE needs: the card's answer
// to INITIALIZE FOR PURCHASE and the purchase exactly as the card will see
// it in DEBIT FOR PURCHASE.
type PurchaseMAC1Input struct {
	// Card is the card's answer to INITIALIZE FOR PURCHASE: its Random,
	// OfflineCounter, KeyVersion and AlgID go to the PSAM unchanged.
	Card epurse.PurchaseInit
	// Amount is the amount in fen that INITIALIZE FOR PURCHASE carried.
	Amount int64
	// Type is the transaction type: the purse's PurchaseType, 06 for the
	// EP, 05 for the ED.
	Type epurse.TxType
	// When is the date and time that DEBIT FOR PURCHASE will carry: pass
	// the same value to epurse.DebitPurchase, or the card refuses MAC1.
	When time.Time
	// CardSerial is the card's application serial (EF 0x15 bytes 10-19);
	// its rightmost 8 bytes are the diversification factor of the card's
	// purchase key.
	CardSerial []byte
	// IssuerFactor, when set, is the 8-byte second diversification factor
	// (issuer or city code) of PSAMs whose purchase key is diversified
	// twice; it follows the card's factor and makes Lc 24 instead of 1C.
	IssuerFactor []byte
}

// command encodes INIT SAM FOR PURCHASE: 80 70 00 00 Lc random offlineCtr
// amount type date time keyVersion algId factor(s). It is sent without Le:
// over T=0 a case-4 command carries none, and the PSAM answers 61 08.
func (in PurchaseMAC1Input) command() (apdu.Command, error) {
	if in.Amount < 0 || in.Amount > epurse.MaxAmount {
		return apdu.Command{}, fmt.Errorf("%w: amount %d fen is not in 0..%d", epurse.ErrBadAmount, in.Amount, int64(epurse.MaxAmount))
	}
	date, clock, err := epurse.EncodeDateTime(in.When)
	if err != nil {
		return apdu.Command{}, fmt.Errorf("transaction time: %w", err)
	}
	if len(in.CardSerial) < FactorLen {
		return apdu.Command{}, fmt.Errorf("%w: card serial of %d bytes, need at least %d", epurse.ErrBadArgument, len(in.CardSerial), FactorLen)
	}
	if n := len(in.IssuerFactor); n != 0 && n != FactorLen {
		return apdu.Command{}, fmt.Errorf("%w: issuer factor of %d bytes, want %d", epurse.ErrBadArgument, n, FactorLen)
	}
	d := make([]byte, 0, initFixedLen+2*FactorLen)
	d = append(d, in.Card.Random[:]...)
	d = binary.BigEndian.AppendUint16(d, in.Card.OfflineCounter)
	d = binary.BigEndian.AppendUint32(d, uint32(in.Amount))
	d = append(d, byte(in.Type))
	d = append(append(d, date[:]...), clock[:]...)
	d = append(d, in.Card.KeyVersion, in.Card.AlgID)
	d = append(d, in.CardSerial[len(in.CardSerial)-FactorLen:]...)
	d = append(d, in.IssuerFactor...)
	return apdu.Command{CLA: claPBOC, INS: insInitSAMPurch, P1: 0x00, P2: 0x00, Data: d}, nil
}

// ErrDiversificationMismatch is an INIT SAM FOR PURCHASE refused for its
// length (6700): the PSAM's purchase key is diversified a number of times
// other than the request's (a PSAM keyed twice wants Lc 24, the card's
// serial and a second factor). The PSAM profile (psam.profile) is wrong
// for this PSAM; nothing was computed and the card was not debited.
var ErrDiversificationMismatch = errors.New("the PSAM expects another diversification of the purchase key than the profile's")

// InitForPurchase asks the PSAM for MAC1: INIT SAM FOR PURCHASE (MAC1 计算),
// 80 70 00 00 1C (24 with an issuer factor). It returns the PSAM's terminal
// transaction serial for this purchase, which goes into DEBIT FOR PURCHASE
// and the TAC, and MAC1. The PSAM uses each serial once: a MAC1 that is not
// used is simply dropped, and the next call gets the next serial.
//
// A key version the PSAM has no key for is apdu.ErrKeyIndex (9403); a
// length the PSAM refuses (6700) is ErrDiversificationMismatch as well as
// apdu.ErrWrongLength.
func InitForPurchase(t apdu.Transmitter, in PurchaseMAC1Input) (serial uint32, mac1 [4]byte, err error) {
	c, err := in.command()
	if err != nil {
		return 0, mac1, fmt.Errorf("init sam for purchase: %w", err)
	}
	data, err := apdu.Transceive(t, c)
	if errors.Is(err, apdu.ErrWrongLength) {
		levels := "one level (no second factor)"
		if len(in.IssuerFactor) > 0 {
			levels = "two levels"
		}
		return 0, mac1, fmt.Errorf("init sam for purchase with Lc %02X, %s: %w: %w", len(c.Data), levels, ErrDiversificationMismatch, err)
	}
	if err != nil {
		return 0, mac1, fmt.Errorf("init sam for purchase: %w", err)
	}
	return parseInitAnswer(data)
}

// parseInitAnswer reads serial(4) MAC1(4).
func parseInitAnswer(data []byte) (serial uint32, mac1 [4]byte, err error) {
	if len(data) != initAnswerLen {
		return 0, mac1, wrongLength("INIT SAM FOR PURCHASE", len(data), initAnswerLen)
	}
	copy(mac1[:], data[4:8])
	return binary.BigEndian.Uint32(data[0:4]), mac1, nil
}

// VerifyMAC2 has the PSAM check the card's MAC2 from DEBIT FOR PURCHASE:
// CREDIT SAM FOR PURCHASE (MAC2 校验), 80 72 00 00 04 MAC2. A MAC2 the PSAM
// refuses is apdu.ErrMACInvalid (9302); a check with no MAC1 before it, or a
// second check of the same MAC1, is apdu.ErrConditionsOfUse (6985).
//
// The card has already debited when it returns MAC2: a refused MAC2 means
// the card is not genuine or the answer was corrupted, and the purchase is
// reported with its TAC for the host to judge, never undone on the card.
func VerifyMAC2(t apdu.Transmitter, mac2 [4]byte) error {
	c := apdu.Command{CLA: claPBOC, INS: insCreditSAMPurch, P1: 0x00, P2: 0x00, Data: mac2[:]}
	data, err := apdu.Transceive(t, c)
	if err != nil {
		return fmt.Errorf("credit sam for purchase: %w", err)
	}
	if len(data) != 0 {
		return wrongLength("CREDIT SAM FOR PURCHASE", len(data), 0)
	}
	return nil
}

// wrongLength reports an answer of the wrong size: a PSAM answering 9000
// with too few bytes must never turn into a zero MAC.
func wrongLength(cmd string, got, want int) error {
	return fmt.Errorf("%w: %s answered %d data bytes, want %d", apdu.ErrMalformed, cmd, got, want)
}

// ReadKeyIndex reads the purchase key index that the terminal must send to
// the card in INITIALIZE FOR PURCHASE: the first byte of EF 0x17 of the
// purchase application, 00 B0 97 00 01 (PSAM_GET_17FILE in the Pos80
// transit POS, read after selecting DF 8011 or 1001; APDUSel0017 in a
// Shanghai transit terminal). The application must be the current DF
// (SelectApp). An index of 00 is refused: no card has key 0.
func ReadKeyIndex(t apdu.Transmitter) (byte, error) {
	c := apdu.Command{CLA: claISO, INS: insReadBinary, P1: 0x80 | SFIKeyIndex, P2: 0x00, Ne: 1}
	data, err := apdu.Transceive(t, c)
	if err != nil {
		return 0, fmt.Errorf("PSAM read key index (EF 17): %w", err)
	}
	return parseKeyIndex(data)
}

// parseKeyIndex reads the one byte of READ BINARY EF 0x17.
func parseKeyIndex(data []byte) (byte, error) {
	if len(data) != 1 {
		return 0, wrongLength("READ BINARY EF 17", len(data), 1)
	}
	if data[0] == 0 {
		return 0, fmt.Errorf("%w: the PSAM's EF 17 gives purchase key index 00", apdu.ErrMalformed)
	}
	return data[0], nil
}

// CardSecurityCode asks the CARD (not the PSAM) for its 9-byte security
// code (安全认证码), 80 CA 00 00 09, which city-card PSAMs want before they
// compute MAC1 (getCardAuthNo of a housing-ministry city card terminal;
// APDUFETCHUSERCODE of a Shanghai transit terminal). The card's purchase
// application must be selected.
func CardSecurityCode(card apdu.Transmitter) ([SecurityCodeLen]byte, error) {
	var code [SecurityCodeLen]byte
	c := apdu.Command{CLA: claPBOC, INS: insSecurityCode, P1: 0x00, P2: 0x00, Ne: SecurityCodeLen}
	data, err := apdu.Transceive(card, c)
	if err != nil {
		return code, fmt.Errorf("card security code (80 CA): %w", err)
	}
	if len(data) != SecurityCodeLen {
		return code, wrongLength("card 80 CA", len(data), SecurityCodeLen)
	}
	copy(code[:], data)
	return code, nil
}

// VerifySecurityCode gives the card's security code to the PSAM,
// 80 CA 00 00 09 <code> (apduUserCode of a Shanghai transit terminal's
// PSAM class), before INIT SAM FOR PURCHASE. A code the PSAM does not
// accept comes back as its status word's typed error.
func VerifySecurityCode(t apdu.Transmitter, code [SecurityCodeLen]byte) error {
	c := apdu.Command{CLA: claPBOC, INS: insSecurityCode, P1: 0x00, P2: 0x00, Data: code[:]}
	data, err := apdu.Transceive(t, c)
	if err != nil {
		return fmt.Errorf("PSAM security code (80 CA): %w", err)
	}
	if len(data) != 0 {
		return wrongLength("PSAM 80 CA", len(data), 0)
	}
	return nil
}

// OpenProfile is Open for a profile: the profile's applications (apps,
// the configured ones, when it names none), then, when the profile says
// so, the key index from EF 0x17. Info.KeyIndex is the index to send to
// the card.
func OpenProfile(t apdu.Transmitter, p Profile, apps ...App) (Info, error) {
	if p.Apps != nil {
		apps = p.Apps
	}
	info, err := Open(t, apps...)
	if err != nil {
		return info, err
	}
	info.KeyIndex = p.keyIndex()
	if p.KeyIndexFromPSAM {
		if info.KeyIndex, err = ReadKeyIndex(t); err != nil {
			return info, err
		}
	}
	return info, nil
}
