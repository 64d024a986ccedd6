package epursesim

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
)

// Status words the simulated card answers beyond those the apdu package
// names. They are what ISO 7816-4 gives for these cases.
const (
	swWrongData       uint16 = 0x6A80 // incorrect data field (a date that does not exist)
	swNoCurrentEF     uint16 = 0x6986 // command not allowed: no current EF
	swWrongOffset     uint16 = 0x6B00 // offset outside the file
	swMACInvalid      uint16 = 0x9302
	swAppLocked       uint16 = 0x9303 // application permanently locked
	swBlockedApp      uint16 = 0x6A81 // function not supported: the application is blocked
	swNoChallenge     uint16 = 0x6984 // reference data not usable: no challenge to MAC against
	swNoKey           uint16 = 0x6A88 // referenced data (the maintenance key) not found
	swInsufficient    uint16 = 0x9401
	swCounterMax      uint16 = 0x9402
	swKeyIndex        uint16 = 0x9403
	swNoProof         uint16 = 0x9406
	swSecurity        uint16 = 0x6982
	swPINBlocked      uint16 = 0x6983
	swConditions      uint16 = 0x6985
	swFileNotFound    uint16 = 0x6A82
	swRecordNotFound  uint16 = 0x6A83
	swInvalidated     uint16 = 0x6283
	swWrongLength     uint16 = 0x6700
	swWrongP1P2       uint16 = 0x6A86
	swINSNotSupported uint16 = 0x6D00
	swCLANotSupported uint16 = 0x6E00
)

// pseName is the name of the payment system environment, "1PAY.SYS.DDF01".
var pseName = []byte("1PAY.SYS.DDF01")

// df is the card's current dedicated file.
type df int

const (
	dfNone df = iota // after power-up, before any SELECT
	dfPSE            // the MF, which is the 1PAY.SYS.DDF01 directory
	dfADF            // the EP/ED application
)

// SimCard is a simulated e-purse card that answers APDUs as a real card does
// (spec "Commands"), so the terminal functions of package epurse, and the
// daemon above them, run unchanged against it. It is an apdu.Transmitter.
// Every change of money is saved to the card file before the card answers,
// as a real card commits its EEPROM before it replies. It is safe for
// concurrent use.
type SimCard struct {
	mu   sync.Mutex
	f    *CardFile
	path string
	rand io.Reader

	// Power-session state, cleared by Reset.
	df      df
	pinOK   bool
	pending *pendingTx
	// challenge is what the last command, a GET CHALLENGE, answered: the
	// IV of a maintenance MAC. Any command after it uses it up.
	challenge *[epurse.ChallengeLen]byte
}

// NewSimCard makes a card of f, which it owns from then on (read it back with
// File). path is where every change is saved; "" keeps the card in memory.
func NewSimCard(f *CardFile, path string) *SimCard {
	return &SimCard{f: f, path: path, rand: rand.Reader}
}

// File returns a copy of the card's current state.
func (c *SimCard) File() *CardFile {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.f.clone()
}

// Reset is a power cycle: the selection, a verified PIN and a pending INIT
// are lost, as when a card leaves the field and comes back.
func (c *SimCard) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.df, c.pinOK, c.pending, c.challenge = dfNone, false, nil, nil
}

// simHistorical are the ATR's historical bytes: category 80 (COMPACT-TLV
// follows), then tag 5 "card issuer's data" of 8 bytes naming the simulator.
var simHistorical = []byte{0x80, 0x58, 'C', 'A', 'R', 'D', 'D', ' ', 'E', 'P'}

// ATR returns the answer to reset that a PC/SC reader builds for an ISO
// 14443-4 contactless card (PC/SC part 3, the ATR of contactless cards):
// 3B 8n 80 01, the n historical bytes, and TCK, the XOR of every byte from
// T0 on. TD1 = 80 and TD2 = 01 announce T=1, which makes TCK mandatory.
func (c *SimCard) ATR() []byte {
	atr := []byte{0x3B, 0x80 | byte(len(simHistorical)), 0x80, 0x01}
	atr = append(atr, simHistorical...)
	var tck byte
	for _, b := range atr[1:] {
		tck ^= b
	}
	return append(atr, tck)
}

// Transmit executes one command APDU and returns the response APDU. An
// error is returned only when the card could not save a change; the change is
// then undone, as a torn EEPROM write leaves the old value, and the terminal
// sees what it sees when a card is pulled mid-command.
func (c *SimCard) Transmit(cmd []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Whatever comes after an INIT, other than its own second command, ends
	// it: a real card keeps the session only for the very next command.
	p, ch := c.pending, c.challenge
	c.pending, c.challenge = nil, nil
	cm, err := apdu.ParseCommand(cmd)
	if err != nil {
		return swOnly(swWrongLength), nil
	}
	data, sw, err := c.dispatch(cm, p, ch)
	if err != nil {
		return nil, err
	}
	return apdu.Response{Data: data, SW: sw}.Bytes(), nil
}

func swOnly(sw uint16) []byte { return []byte{byte(sw >> 8), byte(sw)} }

// responseLen is the fixed answer length of the PBOC commands, so that a
// wrong Le is answered 6Cxx before anything changes.
func responseLen(c apdu.Command) int {
	switch c.INS {
	case insGetBalance, insCreditLoad, insGetChallenge:
		return 4
	case insDebit, insGetProve:
		return 8
	case insInit:
		if c.P1 == p1InitPurchase {
			return 15
		}
		return 16
	}
	return 0
}

func (c *SimCard) dispatch(cm apdu.Command, p *pendingTx, ch *[epurse.ChallengeLen]byte) ([]byte, uint16, error) {
	if cm.CLA != claISO && cm.CLA != claPBOC && cm.CLA != claSecure {
		return nil, swCLANotSupported, nil
	}
	var class byte
	switch cm.INS {
	case insSelect, insReadBinary, insReadRecord, insVerify, insGetChallenge:
		class = claISO
	case insGetBalance, insInit, insCreditLoad, insDebit, insGetProve:
		class = claPBOC
	case insAppBlock, insAppUnblock:
		class = claSecure
	case insSecurityCode:
		if cm.CLA != claPBOC {
			return nil, swINSNotSupported, nil // 00 CA, GET DATA, is not known here
		}
		class = claPBOC
	default:
		return nil, swINSNotSupported, nil
	}
	if cm.CLA != class {
		return nil, swCLANotSupported, nil
	}
	if n := responseLen(cm); n > 0 && cm.Ne != 0 && cm.Ne != apdu.MaxShortNe && cm.Ne != n {
		c.pending = p // the command did not run: its INIT still stands
		return nil, 0x6C00 | uint16(n), nil
	}
	switch cm.INS {
	case insSelect:
		data, sw := c.selectFile(cm)
		return data, sw, nil
	case insReadBinary:
		data, sw := c.readBinary(cm)
		return data, sw, nil
	case insReadRecord:
		data, sw := c.readRecord(cm)
		return data, sw, nil
	case insVerify:
		return c.verify(cm)
	case insGetBalance:
		data, sw := c.getBalance(cm)
		return data, sw, nil
	case insInit:
		return c.initialize(cm)
	case insSecurityCode:
		data, sw := c.securityCode(cm)
		return data, sw, nil
	case insCreditLoad:
		return c.creditLoad(cm, p)
	case insDebit:
		return c.debitPurchase(cm, p)
	case insGetChallenge:
		return c.getChallenge(cm)
	case insAppBlock, insAppUnblock:
		return c.maintain(cm, ch)
	default: // insGetProve
		data, sw := c.getProve(cm)
		return data, sw, nil
	}
}

// selectFile is SELECT (spec "Selecting"): the MF 3F00 or the PSE by name,
// which are the same DF here, and the ADF by file id 1001 or by its AID: a
// card with an AID of its own (CardFile.AID) answers only that one, as a
// T-Union or Shenzhen Tong card does; one without answers either known AID.
// A failed SELECT leaves the current DF as it was, as ISO 7816-4 says.
func (c *SimCard) selectFile(cm apdu.Command) ([]byte, uint16) {
	if cm.P2 != 0x00 && cm.P2 != 0x0C {
		return nil, swWrongP1P2
	}
	var fci []byte
	sw := apdu.SWOK
	switch cm.P1 {
	case 0x00: // by file id; no data also means the MF
		switch {
		case len(cm.Data) == 0 || bytes.Equal(cm.Data, []byte{0x3F, 0x00}):
			fci = c.enterPSE()
		case len(cm.Data) != 2:
			return nil, swWrongLength
		case binary.BigEndian.Uint16(cm.Data) == epurse.FileIDADF:
			fci, sw = c.enterADF(c.f.aid())
		default:
			return nil, swFileNotFound
		}
	case 0x04: // by DF name
		switch aid := cm.Data; {
		case bytes.Equal(aid, pseName):
			fci = c.enterPSE()
		case c.f.AID == "" && (bytes.Equal(aid, epurse.AIDCityCard) || bytes.Equal(aid, epurse.AIDTUnion)), bytes.Equal(aid, c.f.aid()):
			fci, sw = c.enterADF(aid)
		default:
			return nil, swFileNotFound
		}
	default:
		return nil, swWrongP1P2
	}
	if cm.P2 == 0x0C {
		return nil, sw // "no response data" asked
	}
	return fci, sw
}

func (c *SimCard) enterPSE() []byte {
	c.df, c.pinOK = dfPSE, false
	prop := apdu.AppendTLV(nil, tagSFI, []byte{0x01}) // the directory is SFI 1
	inner := apdu.AppendTLV(apdu.AppendTLV(nil, tagDFName, pseName), tagProprietary, prop)
	return apdu.AppendTLV(nil, tagFCI, inner)
}

// enterADF selects the application; a blocked one is selected all the same
// but answers 6283, with its FCI, as real cards do.
func (c *SimCard) enterADF(aid []byte) ([]byte, uint16) {
	c.df, c.pinOK = dfADF, false // selecting a DF resets its security status
	info := c.f.Info
	fci := epurse.FCI{AID: bytes.Clone(aid), Info: &info}.Bytes()
	if c.f.Blocked {
		return fci, swInvalidated
	}
	return fci, apdu.SWOK
}

// readBinary is READ BINARY with an SFI in P1 (100x xxxx) and the offset in
// P2. Le beyond the end of the file is answered 6Cxx with the length left; a
// smaller Le reads that many bytes, as ISO 7816-4 allows; Le=00 reads all.
func (c *SimCard) readBinary(cm apdu.Command) ([]byte, uint16) {
	if cm.P1&0x80 == 0 {
		return nil, swNoCurrentEF // this card selects no EF by file id
	}
	if cm.P1&0x60 != 0 {
		return nil, swWrongP1P2
	}
	if c.df != dfADF {
		return nil, swFileNotFound // EF 0x15 and 0x16 live in the ADF
	}
	var content []byte
	switch cm.P1 & 0x1F {
	case 0x15:
		content = c.f.Info.Bytes()
	case 0x16:
		if c.f.Holder == nil {
			return nil, swFileNotFound
		}
		b, err := c.f.Holder.Bytes()
		if err != nil {
			return nil, swFileNotFound // Validate refuses such a file; never reached
		}
		content = b
	default:
		return nil, swFileNotFound
	}
	off := int(cm.P2)
	if off >= len(content) {
		return nil, swWrongOffset
	}
	rest := content[off:]
	switch {
	case cm.Ne == 0:
		return nil, swWrongLength
	case cm.Ne == apdu.MaxShortNe:
		return rest, apdu.SWOK
	case cm.Ne > len(rest):
		return nil, 0x6C00 | uint16(len(rest))
	}
	return rest[:cm.Ne], apdu.SWOK
}

// readRecord is READ RECORD of record P1 of the file whose SFI is in P2
// (sssss100). In the ADF that is the log, record 1 newest; in the PSE the
// directory, whose one record names the application.
func (c *SimCard) readRecord(cm apdu.Command) ([]byte, uint16) {
	if cm.P2&0x07 != p2ReadRecordSFI || cm.P1 == 0 {
		return nil, swWrongP1P2
	}
	sfi := cm.P2 >> 3
	var rec []byte
	switch {
	case c.df == dfPSE && sfi == 0x01:
		if cm.P1 != 1 {
			return nil, swRecordNotFound
		}
		entry := apdu.AppendTLV(nil, 0x4F, c.f.aid())
		entry = apdu.AppendTLV(entry, 0x50, []byte("E-PURSE"))
		rec = apdu.AppendTLV(nil, 0x70, apdu.AppendTLV(nil, 0x61, entry))
	case c.df == dfADF && (sfi == LogSFI || (sfi == c.f.LoadLogSFI && sfi != 0)):
		log := c.f.Log
		if sfi != LogSFI {
			log = c.f.LoadLog
		}
		n := int(cm.P1)
		switch {
		case n > epurse.MaxLogRecords:
			return nil, swRecordNotFound
		case n > len(log) && c.f.ZeroFilledEmptyRecords:
			rec = make([]byte, epurse.LogRecordLen)
		case n > len(log):
			return nil, swRecordNotFound
		default:
			b, err := log[n-1].Bytes()
			if err != nil {
				return nil, swRecordNotFound // Validate refuses such a file; never reached
			}
			rec = b
		}
	default:
		return nil, swFileNotFound
	}
	// A record is read whole: any other Le is answered with the right one.
	switch cm.Ne {
	case 0:
		return nil, swWrongLength
	case apdu.MaxShortNe, len(rec):
		return rec, apdu.SWOK
	}
	return nil, 0x6C00 | uint16(len(rec))
}

// verify is VERIFY PIN (spec "Commands"). The tries left are saved at once,
// as a real card counts them in EEPROM, so pulling the card after a wrong
// PIN does not give the try back.
func (c *SimCard) verify(cm apdu.Command) ([]byte, uint16, error) {
	if cm.P1 != 0x00 || cm.P2 != 0x00 {
		return nil, swWrongP1P2, nil
	}
	if len(cm.Data) < 2 || len(cm.Data) > 6 {
		return nil, swWrongLength, nil
	}
	if c.df != dfADF {
		return nil, swConditions, nil
	}
	if c.f.PINTriesLeft <= 0 {
		return nil, swPINBlocked, nil
	}
	want, err := epurse.EncodePIN(c.f.PIN)
	ok := err == nil && subtle.ConstantTimeCompare(want, cm.Data) == 1
	tries := PINTries
	if !ok {
		tries = c.f.PINTriesLeft - 1
	}
	if tries != c.f.PINTriesLeft {
		if err := c.commit(func(f *CardFile) { f.PINTriesLeft = tries }); err != nil {
			return nil, 0, err
		}
	}
	if ok {
		c.pinOK = true
		return nil, apdu.SWOK, nil
	}
	// The try that uses up the last one still says 63C0; from then on
	// VERIFY answers 6983.
	return nil, 0x63C0 | uint16(tries), nil
}

// commit applies change to the card file and saves it; when the save fails
// the change is undone and the error returned, so memory never runs ahead of
// what the card would remember after a power loss.
func (c *SimCard) commit(change func(f *CardFile)) error {
	before := c.f.clone()
	change(c.f)
	if c.path == "" {
		return nil
	}
	if err := c.f.Save(c.path); err != nil {
		*c.f = *before
		return fmt.Errorf("simulated card: change not saved, so not made: %w", err)
	}
	return nil
}
